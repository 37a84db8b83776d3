"""A test kit for task runners' own tests: ReportTaskRunnerHeartbeat answered in-process, with a clock and a sweep.

Install it with ``pip install 'taskrunner-heartbeat[testing]'``; pytest then offers the
``heartbeat_fleet`` fixture (plugin). Outside pytest, ``with HeartbeatFleet() as fleet:`` does
the same. See docs/testing-your-runners.md.

Nothing heavy is imported here or by the plugin: pytest loads the plugin in every run, and
moto, boto3 and the service are imported only when a fleet starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heartbeat_testing.fleet import HeartbeatFleet

__all__ = ["HeartbeatFleet"]


def __getattr__(name: str) -> Any:
    if name == "HeartbeatFleet":
        from heartbeat_testing.fleet import HeartbeatFleet

        return HeartbeatFleet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
