"""The botocore client settings the functions use: bounded timeouts and retries, set once.

Every AWS client the service makes takes one of these, so a failing dependency gives a timely,
retryable error rather than a hang.
"""

from __future__ import annotations

from botocore.config import Config as BotoConfig

# Bounded: connect 1 s + read 1 s per attempt, 3 attempts with standard back-off
# (under 1 s, then under 2 s), at most about 9 s: inside the 10 s Lambda timeout, so a
# failing table gives a timely 500, which clients retry. No client-side parameter
# validation: the store builds every request from checked values, DynamoDB validates
# them again, and botocore's check was a third of the handler's own time (make bench).
CLIENT_CONFIG = BotoConfig(
    parameter_validation=False,
    connect_timeout=1,
    read_timeout=1,
    retries={"mode": "standard", "total_max_attempts": 3},
)

# The sweeper's scan: segments read at once. 8 keep a 10M-runner table's scan well inside the
# sweep interval (docs, sweeper scale), and with the sweep's own writes they stay within the
# client's pool of connections below.
SCAN_SEGMENTS = 8

# The sweeper's client: a Scan page is up to 1 MB, which may take longer than the handler's 1 s
# to arrive, and each scan segment keeps a connection of its own beside the sweep's writes.
SWEEPER_CLIENT_CONFIG = CLIENT_CONFIG.merge(BotoConfig(read_timeout=10, max_pool_connections=SCAN_SEGMENTS + 2))

# The operator CLI's client (heartbeat-ops): a list, summary, status or sweep scans the whole table
# page by page, and a 1 MB page from a loaded store (make serve's, with thousands of runners) can take
# many seconds to arrive. An operator waits at a terminal, not inside a Lambda timeout: a minute per
# read, and the standard retries on top.
OPERATOR_CLIENT_CONFIG = CLIENT_CONFIG.merge(
    BotoConfig(connect_timeout=5, read_timeout=60, max_pool_connections=SCAN_SEGMENTS + 2)
)
