"""The pytest plugin (entry point ``pytest11``): the ``heartbeat_fleet`` fixture.

Loaded in every pytest run of a project that installed this one, so it imports only pytest;
the fleet, moto and boto3 come in when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from heartbeat_testing.fleet import HeartbeatFleet


@pytest.fixture
def heartbeat_fleet() -> Iterator[HeartbeatFleet]:
    """ReportTaskRunnerHeartbeat answered in-process by the real service on moto, with a clock and a sweep.

    Every Data Pipeline client's heartbeat, in any region, is answered by the real handler; other
    Data Pipeline operations keep moto's behaviour. Shares an active mock_aws, or starts one.
    """
    from heartbeat_testing.fleet import HeartbeatFleet

    with HeartbeatFleet() as fleet:
        yield fleet
