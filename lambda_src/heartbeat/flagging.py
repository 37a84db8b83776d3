"""Carrying flags out: many conditional writes at once, their stale events in batches, within a deadline.

The plan (see sweeper.py) decides who is flagged; this module only writes it. A flag is one
conditional UpdateItem that a heartbeat or an operator's reset landing at the same moment still
wins (store.flag_stale). The writes are sent by a bounded pool of threads: a flag is mostly a wait
on DynamoDB, and Python's threads wait together while the GIL keeps their CPU (signing, parsing)
serial, so one process drives about as many writes a second as its CPU allows, however long the
round trip (docs/performance.md, "Sweeper scale", has the measured figures).

Each flag records that its stale event is owed (eventPending) in the same write, and that its
writer holds the claim on publishing it (store/flags.py); the events go out in batches of ten as
flags succeed, and each is cleared once EventBridge has accepted it. An event owed from before is
published only once its claim is taken (a work message delivered twice, or an operator's sweep
next to a worker, would otherwise publish it twice). The
orders are read from an iterator and at most a few pool-fulls are in flight, so memory stays flat
however many runners are flagged. Orders left when the deadline passes are not attempted: their
runners are still active and stale, so the next sweep finds them again.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from heartbeat.clients import FLAG_CONCURRENCY
from heartbeat.events import BATCH_SIZE, StaleEventPublisher, StaleRunner
from heartbeat.observability import logger

if TYPE_CHECKING:
    from heartbeat.store import RunnerStore


FLAGGED_RUNNERS = "Flagged runners stale"  # the log line naming up to ten runners just flagged

# A sweep whose deadline passed before it started any work (its scan alone used up the time) still
# starts this much: its next scan takes as long, so without it no sweep would ever make progress.
# A few writes fit the time the deadline keeps in reserve before the function's own limit.
LATE_FLAGS = FLAG_CONCURRENCY  # one round of the flag writers
LATE_EVENTS = BATCH_SIZE  # one PutEvents of owed events
LATE_JUDGED_AT_MOST = 100_000  # runners judged past the deadline looking for LATE_FLAGS to flag (~1.5 s)
# How long a publisher with no deadline holds the claim on an event: past the longest a flag's writer can run
# (Lambda's 15-minute limit). A caller with a deadline holds it until it can no longer be running (Deadline.overrun):
# after that the event, if still owed (its publisher died), is the next publisher's.
CLAIM_SECONDS = 900


@dataclass(frozen=True)
class FlagOrder:
    """One runner the plan flags: the terms of its conditional write, and what its stale event says."""

    taskrunner_id: str
    last_seen: float
    stale_after_seconds: int  # its threshold
    stale_at: float  # the sweep's time: the flag's staleAt, and the write's "now"
    cutoff: float  # the plan's (Judgement.cutoff): a heartbeat or a reset at or after it wins
    hostname: str | None = None
    worker_group: str | None = None

    def event(self) -> StaleRunner:
        return StaleRunner(
            taskrunner_id=self.taskrunner_id,
            last_seen=self.last_seen,
            stale_at=self.stale_at,
            stale_after_seconds=self.stale_after_seconds,
            hostname=self.hostname,
            worker_group=self.worker_group,
        )

    def to_row(self) -> tuple[Any, ...]:
        """As a compact JSON row (spools and work messages)."""
        return (
            self.taskrunner_id,
            self.last_seen,
            self.stale_after_seconds,
            self.stale_at,
            self.cutoff,
            self.hostname,
            self.worker_group,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> FlagOrder:
        return cls(str(row[0]), float(row[1]), int(row[2]), float(row[3]), float(row[4]), row[5], row[6])


def event_to_row(runner: StaleRunner) -> tuple[Any, ...]:
    """An owed stale event as a compact JSON row."""
    return (
        runner.taskrunner_id,
        runner.last_seen,
        runner.stale_after_seconds,
        runner.stale_at,
        runner.hostname,
        runner.worker_group,
    )


def event_from_row(row: Sequence[Any]) -> StaleRunner:
    return StaleRunner(str(row[0]), float(row[1]), float(row[3]), int(row[2]), row[4], row[5])


class Deadline:
    """When to stop starting new work, on a clock of its own (monotonic in Lambda; a parameter in tests)."""

    def __init__(
        self, seconds: float | None, clock: Callable[[], float] = time.monotonic, overrun: float | None = None
    ) -> None:
        self._clock = clock
        self._at = math.inf if seconds is None else clock() + seconds
        # How long past the deadline its holder can still be running (a Lambda invocation's end); None: no bound
        # (heartbeat-ops, which nothing ends: its writes and PutEvents wait on its clients' timeouts and retries).
        self.overrun = overrun

    @classmethod
    def never(cls) -> Deadline:
        return cls(None)

    def remaining(self) -> float:
        """Seconds left (inf for no deadline); each call reads the clock."""
        return self._at - self._clock() if self._at != math.inf else math.inf

    def passed(self) -> bool:
        return self.remaining() <= 0


@dataclass
class Outcome:
    """What carrying out a sweep's flags did."""

    attempted: int = 0  # orders written or refused; the rest were not started (the deadline passed first)
    flagged: int = 0  # written by this call
    lost: int = 0  # a heartbeat or a reset won the race: not flagged
    events_published: int = 0  # accepted by EventBridge: this call's and any owed from before
    events_owed: int = 0  # still owed afterwards (refused, or not reached before the deadline)
    events_claimed: int = 0  # owed from before, but out or being published by another: left to it


def carry_out(
    orders: Iterable[FlagOrder],
    owed: Iterable[StaleRunner],
    store: RunnerStore,
    events: StaleEventPublisher | None,
    deadline: Deadline,
    *,
    concurrency: int = FLAG_CONCURRENCY,
    on_flag: Callable[[FlagOrder], None] | None = None,
    late: bool = False,
    clock: Callable[[], float] = time.time,
    claim_until: float | None = None,
) -> Outcome:
    """Flag each order (conditionally), then publish owed events, starting nothing new once the deadline passes.

    New flags go first, so events owed from earlier sweeps never hold them back; the owed events
    get what time is left. Orders are taken one at a time and none past the deadline, so a lazy
    iterator is never read further than the work done; a sweep that is late (its deadline passed
    before any work began) still starts LATE_FLAGS flags and LATE_EVENTS owed events. A
    StoreError stops the work (no new flag or claim) and is raised once the writes in flight and
    their follow-ups are done (the events of the flags written published, those accepted cleared):
    whatever was flagged and not published keeps its event owed for the next sweep. clock: the time
    of the claims on events (the deployment's: Lambda's, or the service's for heartbeat-ops);
    claim_until: when the caller can no longer be running (its invocation's end), which its claims
    last until (None: CLAIM_SECONDS from each claim).
    """
    pool = _Pool(store, events, concurrency=concurrency, on_flag=on_flag, clock=clock, claim_until=claim_until)
    at_least = (LATE_FLAGS, LATE_EVENTS) if late else (0, 0)
    try:
        for order in _until(deadline, pool, orders, at_least[0]):
            pool.flag(order)
            pool.outcome.attempted += 1
        owed_left = iter(owed)
        for published, runner in enumerate(owed_left):
            if pool.failed or (deadline.passed() and published >= at_least[1]):
                pool.outcome.events_owed += 1 + sum(1 for _ in owed_left)
                break
            pool.publish_owed(runner)
        pool.finish()
    finally:
        pool.close()
    return pool.outcome


def _until(deadline: Deadline, pool: _Pool, orders: Iterable[FlagOrder], at_least: int) -> Iterator[FlagOrder]:
    """The orders while the deadline has not passed (the first at_least whatever it says) and nothing failed."""
    for taken, order in enumerate(orders):
        if pool.failed or (taken >= at_least and deadline.passed()):
            return  # this order was taken, not started: the caller counts it as left
        yield order


class _Pool:
    """The threads and the bookkeeping of one carry_out: flags, their event batches, and the clears.

    Only the calling thread submits work and records results; a pool thread returns what is to be
    recorded. What a result leads to (a batch to publish, an event to clear) waits in a queue of
    follow-ups that the calling thread submits before its next order, so nothing recurses.
    """

    def __init__(
        self,
        store: RunnerStore,
        events: StaleEventPublisher | None,
        *,
        concurrency: int,
        on_flag: Callable[[FlagOrder], None] | None,
        clock: Callable[[], float],
        claim_until: float | None,
    ) -> None:
        self.store, self.events, self._on_flag, self._clock = store, events, on_flag, clock
        self._claims_end = claim_until
        self.outcome = Outcome()
        self._limit = 2 * concurrency  # tasks in flight: enough to keep every thread busy, few enough to stay flat
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="flag")
        self._in_flight: set[Future[Callable[[], None]]] = set()
        self._follow_ups: deque[Callable[[], Callable[[], None]]] = deque()
        self._batch: list[StaleRunner] = []
        self._flagged_ids: list[str] = []
        self._error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self._error is not None

    def flag(self, order: FlagOrder) -> None:
        self._pump()
        self._submit(lambda: self._flag(order))

    def publish_owed(self, runner: StaleRunner) -> None:
        """Claim an event owed from before, then queue it for the next batch of ten."""
        self._pump()
        self._submit(lambda: self._claim(runner))

    def finish(self) -> None:
        """Wait for everything, publishing the last partial batch once no flag can add to it; raise the first error.

        After an error no flag or claim starts, but what was done is followed up: the events of flags written are
        published (or owed), and the events accepted are cleared, so that none goes out again once its claim expires.
        """
        while True:
            self._pump()
            if self._in_flight:
                self._harvest()
            elif self._batch:
                self._flush_batch()
            elif not self._follow_ups:
                break
        self._log_flagged(None)
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Wait for the writes in flight (a failed sweep must not leave threads writing behind it)."""
        self._executor.shutdown(wait=True)

    # A task runs on a pool thread and returns a function the calling thread runs to record its result.

    def _flag(self, order: FlagOrder) -> Callable[[], None]:
        flagged = self.store.flag_stale(
            order.taskrunner_id, last_seen_before=order.cutoff, now=order.stale_at, claim_until=self._claim_until()
        )

        def record() -> None:
            if not flagged:
                self.outcome.lost += 1
                return
            self.outcome.flagged += 1
            if self._on_flag is not None:
                self._on_flag(order)
            self._log_flagged(order.taskrunner_id)
            self._batch.append(order.event())
            if len(self._batch) == BATCH_SIZE:
                self._flush_batch()

        return record

    def _claim(self, runner: StaleRunner) -> Callable[[], None]:
        now = self._clock()
        claimed = self.store.claim_event(
            runner.taskrunner_id, stale_at=runner.stale_at, now=now, until=self._claim_until()
        )

        def record() -> None:
            if not claimed:
                self.outcome.events_claimed += 1
                return
            self._batch.append(runner)
            if len(self._batch) == BATCH_SIZE:
                self._flush_batch()

        return record

    def _claim_until(self) -> float:
        return self._claims_end if self._claims_end is not None else self._clock() + CLAIM_SECONDS

    def _publish(self, batch: list[StaleRunner]) -> Callable[[], None]:
        assert self.events is not None  # noqa: S101 - _flush_batch never publishes without a publisher
        published, owed = self.events.publish(batch)
        stale_at = {runner.taskrunner_id: runner.stale_at for runner in batch}

        def record() -> None:
            self.outcome.events_published += len(published)
            self.outcome.events_owed += len(owed)
            if owed:
                logger.error("Stale events not published; the next sweep retries them", extra={"owed": len(owed)})
            for taskrunner_id in published:
                self._follow_ups.append(lambda r=taskrunner_id: self._clear(r, stale_at[r]))  # type: ignore[misc]
            for taskrunner_id in owed:
                self._follow_ups.append(lambda r=taskrunner_id: self._release(r, stale_at[r]))  # type: ignore[misc]

        return record

    def _clear(self, taskrunner_id: str, stale_at: float) -> Callable[[], None]:
        self.store.event_published(taskrunner_id, stale_at)
        return _nothing

    def _release(self, taskrunner_id: str, stale_at: float) -> Callable[[], None]:
        self.store.release_claim(taskrunner_id, stale_at)
        return _nothing

    def _log_flagged(self, taskrunner_id: str | None) -> None:
        """One line per ten runners flagged (None: the last few): at a million flags a line each held the sweep up."""
        if taskrunner_id is not None:
            self._flagged_ids.append(taskrunner_id)
        if self._flagged_ids and (taskrunner_id is None or len(self._flagged_ids) == BATCH_SIZE):
            logger.info(FLAGGED_RUNNERS, extra={"taskrunnerIds": self._flagged_ids})
            self._flagged_ids = []

    def _flush_batch(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self.events is None:
            self.outcome.events_owed += len(batch)
        else:
            self._follow_ups.append(lambda: self._publish(batch))

    def _pump(self) -> None:
        while self._follow_ups:  # even after an error: they follow up work done (see finish)
            self._submit(self._follow_ups.popleft(), follow_up=True)

    def _submit(self, task: Callable[[], Callable[[], None]], *, follow_up: bool = False) -> None:
        while len(self._in_flight) >= self._limit and (follow_up or self._error is None):
            self._harvest()
        if follow_up or self._error is None:
            self._in_flight.add(self._executor.submit(task))

    def _harvest(self) -> None:
        done, self._in_flight = wait(self._in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            error = future.exception()
            if error is not None:
                self._error = self._error or error
            else:
                future.result()()  # recorded even after an error: a publish's result leads to its clears


def _nothing() -> None:
    return None
