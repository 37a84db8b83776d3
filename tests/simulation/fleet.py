"""A fleet of task runners on a simulated clock, against the real handler, store and sweeper.

Every heartbeat is a real API Gateway REST event through the real handler
(``heartbeat.handler.make_handler``), which writes through the real ``RunnerStore`` to
DynamoDB on moto; the real ``sweeper.sweep`` runs on its schedule and publishes to
EventBridge on moto. Only the clock is simulated, so three days take seconds.

Failures are injected where they happen in production:
- the heartbeat path down (API Gateway or Lambda): the request never reaches the handler,
  so the client's attempts fail and nothing runs;
- DynamoDB writes failing, a brownout: botocore ``before-send`` hooks on the DynamoDB
  client answer 500 ``InternalServerError`` as DynamoDB would, so the handler (and the
  sweeper's writes) fail as they really do;
- EventBridge down: the same hook on PutEvents;
- the sweeper down: its scheduled runs do not happen;
- part of the fleet cut off from the path (one zone of three): only its requests never arrive.

A scale-in removes runners with no deregistration (they simply stop), or with AWS's own signal
(an EC2 "terminated" event through the real heartbeat.signals handler). An operator's sweep runs
the real heartbeat-ops CLI, its own clock skewed as given, DynamoDB's clock the simulated one.

Clients behave as the SDKs do: each heartbeat is up to 3 attempts, one after another.
The simulator's DynamoDB client makes one attempt per call (botocore's back-off would
sleep in real time); a request that fails all of its attempts ends the same way
(``StoreError``, 500).
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig
from moto import mock_aws

from heartbeat.clients import CLIENT_CONFIG
from heartbeat.config import DEFAULT_SWEEP_INTERVAL_SECONDS, Config
from heartbeat.events import StaleEventPublisher
from heartbeat.handler import Dependencies, make_handler
from heartbeat.observability import logger
from heartbeat.runners import Runner as StoredRunner
from heartbeat.runners import Status
from heartbeat.signals import make_handler as make_retire_handler
from heartbeat.store import RunnerStore, StoreError, SweepState
from heartbeat.sweeper import sweep
from heartbeat_local.server import create_table
from heartbeat_ops.__main__ import main as ops_main
from tests.support import LambdaContext, canned_response, dynamodb_clock, heartbeat_event, load_event

TABLE = "runners-simulated"
START = 1_795_521_600.0  # 2026-11-24T12:00:00Z
SWEEP_INTERVAL = DEFAULT_SWEEP_INTERVAL_SECONDS  # the schedule's rate
SWEEP_PHASE = 17.0  # sweeps do not run on the minute the fleet started
SWEEP_DURATION = 2.0  # how long a sweep takes, in simulated seconds
JITTER = 0.05  # each beat comes up to 5% early or late
ATTEMPTS = 3  # the SDKs' standard retry mode
RETRY_GAP = 1.0  # seconds between a client's attempts
WRITES = ("UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class Group:
    """A worker group: its share of the fleet and how often its runners beat."""

    name: str
    share: float
    period: float = 900.0


@dataclass(frozen=True)
class Window:
    """From start to end seconds after the fleet has settled (the watch is established)."""

    start: float
    end: float

    def covers(self, at: float) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Scenario:
    """A fleet, its settings and what goes wrong. Times are seconds after the fleet has settled."""

    name: str
    groups: tuple[Group, ...] = (Group("etl", 0.5), Group("reports", 0.3), Group("batch", 0.2))
    stale_after_by_worker_group: tuple[tuple[str, int], ...] = ()
    path_down: tuple[Window, ...] = ()  # API Gateway / Lambda unavailable
    writes_down: tuple[Window, ...] = ()  # DynamoDB refuses writes; reads work
    events_down: tuple[Window, ...] = ()  # EventBridge refuses PutEvents
    sweeper_down: tuple[Window, ...] = ()  # the schedule does not invoke the sweeper
    brownout: tuple[Window, ...] = ()  # half of all requests fail
    die_share: tuple[float, float] | None = None  # (when, share of the fleet) dying at once
    die_group: tuple[float, str] | None = None  # (when, worker group) dying whole
    rolling: Window | None = None  # one runner dies every sweep interval, replaced by a new one
    held_by_design: bool = False  # deaths held by a group's guard until an operator overrides
    tail_thresholds: int = 1  # how many thresholds to play after the last event
    scale_in: tuple[tuple[float, float], ...] = ()  # (when, share of the starting fleet removed then)
    retire_by_signal: bool = False  # each removed runner's instance sends EC2's "terminated" event
    die_survivors: tuple[float, float] | None = None  # (when, share of the runners never removed) dying
    cut_off: tuple[Window, float] | None = None  # a share of the fleet cannot reach the path during the window
    operator_sweep: tuple[float, float] | None = None  # (when, how far the operator's clock is ahead)
    state_stamped_ahead: tuple[float, float] | None = None  # (when, how far ahead) a bug stamps the sweep state

    def config(self) -> Config:
        return Config(TABLE, stale_after_by_worker_group=dict(self.stale_after_by_worker_group))

    def windows(self) -> tuple[Window, ...]:
        cut = (self.cut_off[0],) if self.cut_off else ()
        return self.path_down + self.writes_down + self.events_down + self.sweeper_down + self.brownout + cut

    def event_times(self) -> list[float]:
        """When the scenario's deaths, removals and operator actions happen."""
        return (
            [self.die_share[0] if self.die_share else 0.0, self.die_group[0] if self.die_group else 0.0]
            + [self.rolling.end if self.rolling else 0.0, self.die_survivors[0] if self.die_survivors else 0.0]
            + [when for when, _ in self.scale_in]
            + [self.operator_sweep[0] if self.operator_sweep else 0.0]
            + [self.state_stamped_ahead[0] if self.state_stamped_ahead else 0.0]
        )


@dataclass
class Runner:
    taskrunner_id: str
    group: Group
    dies_at: float | None = None
    removed_at: float | None = None  # taken away on purpose by a scale-in (it stops beating)
    cut_off: bool = False  # in the zone cut off from the path
    stopped: bool = False  # told to terminate: a real Task Runner exits
    last_success: float | None = None
    told_to_terminate_while_alive: bool = False


@dataclass
class Outcome:
    """What a scenario did to the fleet."""

    scenario: str
    size: int
    wrongly_flagged: int = 0  # live runners flagged or told to terminate
    deaths: int = 0
    deaths_flagged: int = 0
    worst_delay: float | None = None  # flag time minus death time, worst over the flagged dead
    worst_overrun: float | None = None  # flag time minus last heartbeat minus threshold, worst over the flagged dead
    held_then_overridden: int | None = None  # for deaths held by design: flagged by an operator's override
    removed: int = 0  # runners a scale-in took away
    removed_flagged: int = 0
    removed_retired: int = 0
    worst_removed_wait: float | None = None  # flag time minus last heartbeat, worst over the removed and flagged
    cut_off_flagged: int = 0  # live runners cut off from the path and flagged: by design (docs/guarantees.md)
    short_threshold_warned: bool = False  # a sweep reported a threshold under twice its group's beat period
    held_sweeps: int = 0  # sweeps that held a scope
    longest_hold: int = 0  # consecutive held sweeps, at most
    heartbeats: int = 0
    sweeps: int = 0
    failed_sweeps: int = 0
    notes: list[str] = field(default_factory=list)

    def removed_in_bound(self, threshold: int) -> bool:
        """Every removed runner was flagged or retired within 2 thresholds + 2 sweep intervals of its last heartbeat."""
        settled = self.removed_flagged + self.removed_retired == self.removed
        return settled and (self.worst_removed_wait or 0) <= 2 * threshold + 2 * SWEEP_INTERVAL

    @property
    def in_time(self) -> bool:
        """Every flagged death was flagged within its threshold + 2 sweep intervals of its last heartbeat."""
        return self.worst_overrun is None or self.worst_overrun <= 2 * SWEEP_INTERVAL


class _Faults:
    """Fails chosen AWS calls at botocore's before-send, as the service would answer them."""

    def __init__(self, rng: random.Random) -> None:
        self.writes = False
        self.events = False
        self.brownout = False
        self._rng = rng

    def on_api_dynamodb(self, event_name: str, **_: Any) -> AWSResponse | None:
        if self.brownout and self._rng.random() < 0.5:
            return _error(500, "com.amazonaws.dynamodb.v20120810#InternalServerError")
        return self.on_sweeper_dynamodb(event_name)

    def on_sweeper_dynamodb(self, event_name: str, **_: Any) -> AWSResponse | None:
        if self.writes and event_name.rsplit(".", 1)[-1] in WRITES:
            return _error(500, "com.amazonaws.dynamodb.v20120810#InternalServerError")
        return None

    def on_events(self, **_: Any) -> AWSResponse | None:
        return _error(500, "InternalException") if self.events else None


def _error(status: int, code: str) -> AWSResponse:
    body = json.dumps({"__type": code, "message": "injected by the fleet simulator"}).encode()
    return canned_response("https://simulated", status, body, {"x-amzn-ErrorType": code})


class Simulation:
    """One scenario over one fleet: run() plays it and returns its Outcome."""

    def __init__(self, scenario: Scenario, size: int, seed: int = 7) -> None:
        self.scenario = scenario
        self.size = size
        self.config = scenario.config()
        self.rng = random.Random(f"{scenario.name}/{size}/{seed}")  # noqa: S311 - a reproducible fleet, not a secret
        self.now = START
        self.thresholds = {g.name: self.config.stale_after_for(g.name) for g in scenario.groups}
        longest = max(self.thresholds.values())
        # The sweeper has been watching for a day (its state says so); the runners start beating at START,
        # spread over their period, so after one period and a minute the fleet has settled.
        self.settled = START + max(g.period for g in scenario.groups) + 60
        last = max([w.end for w in scenario.windows()] + scenario.event_times())
        # Then long enough after the last event for every death to be flagged and every runner to beat again
        # (a death during one of our outages is flagged a threshold after the guard lets go). With no death,
        # the outcome is settled once every runner has beaten again after the last event (its first answer
        # after recovery) and two more sweeps have judged the fleet: from then on every runner beats well
        # inside its threshold, so no later sweep can flag it; playing a whole threshold more would only
        # add heartbeats (at N = 10,000, 40,000 of them).
        if scenario.die_share or scenario.die_group or scenario.rolling or scenario.scale_in or scenario.die_survivors:
            tail = scenario.tail_thresholds * longest + 3 * SWEEP_INTERVAL
        else:
            longest_period = max(g.period for g in scenario.groups)
            tail = longest_period * (1 + JITTER) + ATTEMPTS * RETRY_GAP + 2 * SWEEP_INTERVAL
        self.end = self.settled + last + tail
        self.runners: list[Runner] = []
        self.queue: list[tuple[float, int, int]] = []  # (time, order, runner index or -1 for a sweep)
        self.actions: list[tuple[float, int, Callable[[], None]]] = []  # (time, order, what happens then)
        self.outcome = Outcome(scenario.name, size)
        self._holding = 0
        self.held_by_design = False  # set when a scenario leaves nobody beating
        self.windows_cut = (scenario.cut_off[0],) if scenario.cut_off else ()

    # The clock every component reads.
    def clock(self) -> float:
        return self.now

    def _at(self, relative: float) -> float:
        return self.settled + relative

    def _add_runner(self, group: Group, first_beat: float) -> int:
        index = len(self.runners)
        self.runners.append(Runner(f"i-{index:017x}", group))  # EC2 instance ids: the retire signal's convention
        heapq.heappush(self.queue, (first_beat, index + 1, index))
        return index

    def _populate(self) -> None:
        counts = [round(g.share * self.size) for g in self.scenario.groups]
        counts[0] += self.size - sum(counts)
        for group, count in zip(self.scenario.groups, counts, strict=True):
            for k in range(count):  # offsets spread evenly over the period, with jitter
                spread = (k + self.rng.uniform(-0.4, 0.4)) * group.period / count
                self._add_runner(group, START + max(0.0, spread))
        sweep_at = START + SWEEP_PHASE
        while sweep_at < self.end:
            heapq.heappush(self.queue, (sweep_at, 0, -1))
            sweep_at += SWEEP_INTERVAL

    def _act(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.actions, (when, len(self.actions), action))

    def _schedule_deaths(self) -> None:
        self._schedule_scale_in()
        self._schedule_operators()
        scenario = self.scenario
        if scenario.die_share is not None:
            when, share = scenario.die_share
            for runner in self.rng.sample(self.runners, round(share * len(self.runners))):
                runner.dies_at = self._at(when)
        if scenario.die_group is not None:
            when, name = scenario.die_group
            for runner in self.runners:
                if runner.group.name == name:
                    runner.dies_at = self._at(when)

    def _schedule_scale_in(self) -> None:
        """Removals (and their AWS signals), the survivors' later deaths, the zone cut off."""
        scenario = self.scenario
        remaining = list(self.runners)
        for when, share in scenario.scale_in:
            for runner in self.rng.sample(remaining, round(share * len(self.runners))):
                runner.removed_at = self._at(when)
                remaining.remove(runner)
                if scenario.retire_by_signal:  # EC2 sends its event once the instance is terminated
                    self._act(self._at(when) + self.rng.uniform(30, 120), lambda r=runner: self._signal(r))
        if scenario.die_survivors is not None:
            when, share = scenario.die_survivors
            for runner in self.rng.sample(remaining, max(1, round(share * len(remaining)))):
                runner.dies_at = self._at(when)
        if scenario.cut_off is not None:
            for runner in self.rng.sample(self.runners, round(scenario.cut_off[1] * len(self.runners))):
                runner.cut_off = True

    def _schedule_operators(self) -> None:
        scenario = self.scenario
        if scenario.operator_sweep is not None:
            when, ahead = scenario.operator_sweep
            self._act(self._at(when), lambda: self._operator_sweep(ahead))
        if scenario.state_stamped_ahead is not None:
            when, ahead = scenario.state_stamped_ahead
            self._act(self._at(when), lambda: self._stamp_state(ahead))

    def _rolling_death(self) -> None:
        """One live runner dies now; the autoscaling group starts a replacement with a new id."""
        alive = [r for r in self.runners if r.dies_at is None and not r.stopped]
        victim = self.rng.choice(alive)
        victim.dies_at = self.now
        self._add_runner(victim.group, self.now + self.rng.uniform(30, 120))

    def _signal(self, runner: Runner) -> None:
        event = load_event("ec2_instance_terminated")
        event["detail"]["instance-id"] = runner.taskrunner_id
        self._retire(event, LambdaContext(function_name="retire"))

    def _operator_sweep(self, ahead: float) -> None:
        """heartbeat-ops runners sweep, from a machine whose clock is `ahead` seconds ahead of the service's."""
        out, err = io.StringIO(), io.StringIO()
        with dynamodb_clock(self.clock):
            status = ops_main(
                ["runners", "sweep", "--table", TABLE, "--region", "us-east-1"],
                clock=lambda: self.now + ahead, out=out, err=err,
            )  # fmt: skip
        if status != 0:
            self.outcome.notes.append(f"operator sweep failed: {err.getvalue().strip()}")

    def _stamp_state(self, ahead: float) -> None:
        """A bug (or a skewed clock) saves a sweep state stamped `ahead` seconds in the future."""
        state = self._store.load_sweep_state()
        if state is not None:
            later = state.last_sweep_at + ahead
            self._store.save_sweep_state(replace(state, last_sweep_at=later, finished_at=later))

    def _covers(self, windows: tuple[Window, ...], at: float) -> bool:
        return any(w.covers(at - self.settled) for w in windows)

    def run(self) -> Outcome:
        with mock_aws(), contextlib.redirect_stdout(io.StringIO()) as sink:
            level = logger.log_level
            logger.setLevel("CRITICAL")  # a line per request would cost more than the requests
            try:
                self._run(sink)
            finally:
                logger.setLevel(level)
        return self.outcome

    def _run(self, sink: io.StringIO) -> None:
        faults = _Faults(self.rng)
        # Two functions, two clients: the API's and the sweeper's. A brownout hits the API's requests.
        config = CLIENT_CONFIG.merge(BotoConfig(retries={"total_max_attempts": 1}))
        dynamodb = boto3.client("dynamodb", config=config, **KEYS)
        dynamodb.meta.events.register("before-send.dynamodb", faults.on_api_dynamodb)
        sweeper_dynamodb = boto3.client("dynamodb", config=config, **KEYS)
        sweeper_dynamodb.meta.events.register("before-send.dynamodb", faults.on_sweeper_dynamodb)
        events_client = boto3.client("events", config=BotoConfig(retries={"total_max_attempts": 1}), **KEYS)
        events_client.meta.events.register("before-send.events.PutEvents", faults.on_events)
        create_table(dynamodb, TABLE)
        store = RunnerStore(TABLE, client=sweeper_dynamodb)
        store.save_sweep_state(
            SweepState(last_sweep_at=START - SWEEP_INTERVAL, watching_since=START - 86_400, finished_at=START - 298)
        )
        publisher = StaleEventPublisher("default", events_client, sleep=lambda _: None)
        dependencies = Dependencies(config=self.config, store=RunnerStore(TABLE, client=dynamodb), clock=self.clock)
        handler = make_handler(lambda: dependencies)
        context = LambdaContext()
        self._store = store
        api_store = dependencies.store
        self._retire = make_retire_handler(lambda: api_store, clock=self.clock)

        self._populate()
        self._schedule_deaths()
        rolling_next = self._at(self.scenario.rolling.start) if self.scenario.rolling else None
        while self.queue:
            when, order, index = heapq.heappop(self.queue)
            if when >= self.end:
                break
            while rolling_next is not None and rolling_next <= when:
                self.now = rolling_next
                self._rolling_death()
                rolling_next += SWEEP_INTERVAL
                if rolling_next >= self._at(self.scenario.rolling.end):  # type: ignore[union-attr]
                    rolling_next = None
            while self.actions and self.actions[0][0] <= when:
                self.now, _, action = heapq.heappop(self.actions)
                action()
            self.now = when
            faults.writes = self._covers(self.scenario.writes_down, when)
            faults.events = self._covers(self.scenario.events_down, when)
            faults.brownout = self._covers(self.scenario.brownout, when)
            if index < 0:
                if not self._covers(self.scenario.sweeper_down, when):
                    self._sweep(store, publisher)
                continue
            runner = self.runners[index]
            gone = any(t is not None and t <= when for t in (runner.dies_at, runner.removed_at))
            if gone or runner.stopped:
                continue
            self._beat(runner, handler, context)
            period = runner.group.period * (1 + self.rng.uniform(-JITTER, JITTER))
            heapq.heappush(self.queue, (when + period, order, index))
            sink.seek(0)
            sink.truncate()  # the handler's metrics lines
        self.now = self.end
        self._judge(store)

    def _beat(self, runner: Runner, handler: Callable[..., dict[str, Any]], context: Any) -> None:
        start = self.now
        try:
            for attempt in range(ATTEMPTS):
                self.now = start + attempt * RETRY_GAP
                if self._covers(self.scenario.path_down, self.now):
                    continue  # API Gateway or Lambda down: the handler never sees the request
                if runner.cut_off and self._covers(self.windows_cut, self.now):
                    continue  # its zone cannot reach the endpoint
                body = {"taskrunnerId": runner.taskrunner_id, "workerGroup": runner.group.name}
                result = handler(heartbeat_event(body), context)
                self.outcome.heartbeats += 1
                if result["statusCode"] != 200:
                    continue
                runner.last_success = self.now
                if json.loads(result["body"])["terminate"]:
                    runner.stopped = True
                    runner.told_to_terminate_while_alive = True  # only live runners beat
                return
        finally:
            self.now = start

    def _sweep(
        self, store: RunnerStore, publisher: StaleEventPublisher | None, *, override_guard: bool = False
    ) -> None:
        start = self.now
        self.outcome.sweeps += 1
        try:
            report = sweep(
                store,
                self.config,
                start,
                publisher,
                override_guard=override_guard,
                clock=lambda: start + SWEEP_DURATION,
            )
        except StoreError:
            self.outcome.failed_sweeps += 1  # the invocation fails; the next scheduled one tries again
            return
        self.outcome.short_threshold_warned |= bool(report.short_thresholds)
        if report.held and not override_guard:
            self.outcome.held_sweeps += 1
            self._holding += 1
            self.outcome.longest_hold = max(self.outcome.longest_hold, self._holding)
        else:
            self._holding = 0

    def _judge(self, store: RunnerStore) -> None:
        outcome = self.outcome
        by_id = {r.taskrunner_id: r for r in self.runners}
        records = {r.taskrunner_id: r for r in store.runners()}
        alive = [r for r in self.runners if r.dies_at is None and r.removed_at is None]
        if not alive and any(r.dies_at is not None for r in self.runners):
            self.held_by_design = True  # nobody left beating: indistinguishable from our outage, held
        for runner in self.runners:
            record = records.get(runner.taskrunner_id)
            flagged = record is not None and record.status == Status.STALE.value
            dead = runner.dies_at is not None
            if runner.removed_at is not None:
                self._judge_removed(runner, record)
                continue
            if runner.cut_off and flagged and not dead:
                outcome.cut_off_flagged += 1
                continue
            if runner.told_to_terminate_while_alive or (
                flagged and (not dead or (record.stale_at or 0) < (runner.dies_at or 0))  # type: ignore[union-attr]
            ):
                outcome.wrongly_flagged += 1
                continue
            if not dead:
                continue
            outcome.deaths += 1
            if flagged and record is not None and record.stale_at is not None:
                outcome.deaths_flagged += 1
                delay = record.stale_at - (runner.dies_at or 0)
                overrun = record.stale_at - record.last_seen - self.thresholds[runner.group.name]
                outcome.worst_delay = max(outcome.worst_delay or 0.0, delay)
                outcome.worst_overrun = max(outcome.worst_overrun or 0.0, overrun)
        if (self.scenario.held_by_design or self.held_by_design) and outcome.deaths_flagged < outcome.deaths:
            # The operator confirms the worker group is gone, as docs/guarantees.md says to.
            self.now = self.end
            self._sweep(store, None, override_guard=True)
            after = {r.taskrunner_id: r for r in store.runners()}
            outcome.held_then_overridden = 0
            for taskrunner_id, runner in by_id.items():
                record = after.get(taskrunner_id)
                if record is None or record.status != Status.STALE.value or runner.removed_at is not None:
                    continue  # a removed runner flagged by the override stays counted as not flagged in bound
                if runner.dies_at is None:
                    outcome.wrongly_flagged += 1
                elif records[taskrunner_id].status != Status.STALE.value:
                    outcome.held_then_overridden += 1

    def _judge_removed(self, runner: Runner, record: StoredRunner | None) -> None:
        outcome = self.outcome
        outcome.removed += 1
        if record is None:
            return
        if record.status == Status.RETIRED.value and record.stale_at is None:
            outcome.removed_retired += 1  # left with no stale event
        elif record.status == Status.STALE.value and record.stale_at is not None:
            outcome.removed_flagged += 1
            wait = record.stale_at - record.last_seen
            outcome.worst_removed_wait = max(outcome.worst_removed_wait or 0.0, wait)
