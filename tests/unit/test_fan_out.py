"""The pieces that carry a sweep's plan out at scale, without AWS: the spool, the work messages, the deadline."""

from __future__ import annotations

import json
import zlib
from collections import Counter

from heartbeat.events import StaleRunner
from heartbeat.fan_out import CHUNK_BYTES, CHUNK_ORDERS, LANES, Handout, Work, chunks, handout, lane_of
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


def test_a_runners_lane_is_the_same_in_every_process_and_spreads_a_fleet_evenly() -> None:
    # crc32 of the UTF-8 bytes (a lone surrogate passed through): fixed values, not Python's salted hash().
    assert [lane_of(LONGEST), lane_of(ODD), lane_of("")] == [12, 2, 0]
    assert lane_of("i-0123456789abcdef0") == zlib.crc32(b"i-0123456789abcdef0") % LANES
    counts = Counter(lane_of(f"i-{i:017x}-taskrunner") for i in range(64_000))
    assert len(counts) == LANES
    assert max(counts.values()) < 1.1 * 64_000 / LANES  # no lane holds much more than its share


DUE = [10] * LANES  # runners past their threshold in each lane


def test_an_empty_queue_hands_out_from_the_first_lane_whatever_was_recorded() -> None:
    # The queue drained: whatever earlier sweeps handed out is done (or in the dead-letter queue), so every lane
    # is this sweep's again.
    assert handout(0, 40, DUE, capacity=1000) == Handout(first_lane=0, fan_out=False, handed_out=0)
    assert handout(0, 40, DUE, capacity=100) == Handout(first_lane=0, fan_out=True, handed_out=0)


def test_a_busy_queue_leaves_the_lanes_it_holds_to_the_workers() -> None:
    busy = handout(3, 40, DUE, capacity=1000)
    assert busy == Handout(first_lane=40, fan_out=False, handed_out=40)
    # Only the lanes from 40 count towards what the sweep must write: 24 lanes of 10.
    assert handout(3, 40, DUE, capacity=239).fan_out
    assert not handout(3, 40, DUE, capacity=240).fan_out
    # Everything handed out and still queued: nothing is this sweep's.
    assert handout(3, LANES, DUE, capacity=0) == Handout(first_lane=LANES, fan_out=False, handed_out=LANES)


def test_a_record_out_of_range_cannot_make_a_sweep_skip_lanes_forever() -> None:
    assert handout(3, 10_000, DUE, capacity=0).first_lane == LANES  # at worst, nothing until the queue drains
    assert handout(3, -5, DUE, capacity=0).first_lane == 0
    assert handout(0, 10_000, DUE, capacity=0).first_lane == 0


def test_a_queue_that_did_not_answer_leaves_every_flag_to_the_sweep() -> None:
    # What the queue holds is unknown, so the record stands: recording 0 would make the next sweep that finds the
    # queue busy hand out again every lane it holds.
    assert handout(None, 40, DUE, capacity=0) == Handout(first_lane=0, fan_out=False, handed_out=40)
