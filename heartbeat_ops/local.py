"""Where ``make serve`` keeps its embedded store, so that heartbeat-ops finds it with nothing copied from its console.

make serve (``heartbeat_local``) listens on these defaults, and heartbeat-ops falls back to them when it
is given no table, stack or endpoint. They live here, in the package that ships the CLI, because the
CLI must not import the dev server (a ``pipx install`` of the CLI has none of its dependencies).
"""

from __future__ import annotations

LOCAL_STORE_HOST = "127.0.0.1"
LOCAL_STORE_PORT = 8081  # beside make serve's own 8080
LOCAL_STORE_URL = f"http://{LOCAL_STORE_HOST}:{LOCAL_STORE_PORT}"
LOCAL_TABLE_NAME = "taskrunner-heartbeat"
# Where make serve delivers stale events: a rule on the embedded bus feeds this queue, and `heartbeat-ops events`
# reads it.
STALE_EVENTS_QUEUE = "taskrunner-stale-events"


def keys_table_name(table_name: str) -> str:
    """make serve's keys table: the runners table's name and "-keys"."""
    return f"{table_name}-keys"


def keys_kms_alias(table_name: str) -> str:
    """The alias of make serve's KMS key, by which the handler and heartbeat-ops find it."""
    return f"alias/{keys_table_name(table_name)}"
