"""The pieces that carry a sweep's plan out at scale, without AWS: the spool, the work messages, the deadline."""

from __future__ import annotations

import json

from heartbeat.events import StaleRunner
from heartbeat.fan_out import CHUNK_BYTES, CHUNK_ORDERS, Work, chunks
from heartbeat.flagging import Deadline, FlagOrder
from heartbeat.spool import Spool

LONGEST = "\U0001f600" * 1024  # 1,024 code points of 4 UTF-8 bytes: the longest id the API allows
ODD = "tab\there \u00e9\u20ac \ufffd \ud800 end"  # a tab, multi-byte characters, U+FFFD and a lone surrogate


def order(taskrunner_id: str, i: int = 0) -> FlagOrder:
    return FlagOrder(
        taskrunner_id,
        1_795_518_000.0 + i,
        2700,
        1_795_521_600.0,
        1_795_518_900.0,
        f"host-{i}",
        None if i % 2 else "etl",
    )


def test_a_spool_gives_back_every_row_in_order_past_its_memory_bound() -> None:
    rows = [(f"runner-{i}", float(i), None, ODD, i) for i in range(5000)] + [(LONGEST, 1.5, "g", None, 7)]
    with Spool(memory_bytes=4096) as spool:  # far less than the rows: they go to a file
        for row in rows:
            spool.append(row)
        assert len(spool) == len(rows)
        assert list(spool) == rows
        assert list(spool) == rows  # read again, from the first


def test_work_messages_split_by_count_and_size_and_round_trip_every_order_and_owed_event() -> None:
    orders = [order(f"r-{i:05d}", i) for i in range(2 * CHUNK_ORDERS + 5)] + [order(LONGEST, 1), order(ODD, 2)]
    owed = [StaleRunner(LONGEST, 1.0, 2.0, 600, None, "g"), StaleRunner("owed", 3.0, 4.0, 2700, "h", None)]
    bodies = list(chunks(orders, owed))
    assert [(n, m) for _, n, m in bodies] == [(CHUNK_ORDERS, 0), (CHUNK_ORDERS, 0), (7, 2)]
    received = [Work.from_body(body) for body, _, _ in bodies]
    assert [o for w in received for o in w.orders] == orders
    assert [r for w in received for r in w.owed] == owed
    for body, _, _ in bodies:
        assert body.isascii()  # SQS refuses U+FFFE and lone surrogates; escaped, none is left
        assert len(body) <= CHUNK_BYTES < 256 * 1024
        json.loads(body)


def test_a_message_of_the_longest_ids_stays_under_the_size_limit() -> None:
    bodies = list(chunks([order(LONGEST + str(i), i) for i in range(200)], []))
    assert all(len(body) <= CHUNK_BYTES for body, _, _ in bodies)
    assert sum(n for _, n, _ in bodies) == 200
    assert len(bodies) > 1  # 200 ids of 12 escaped bytes a character do not fit one message


def test_a_deadline_reads_its_own_clock() -> None:
    now = [100.0]
    deadline = Deadline(5, lambda: now[0])
    assert (deadline.remaining(), deadline.passed()) == (5, False)
    now[0] = 105.0
    assert deadline.passed()
    assert not Deadline.never().passed()
