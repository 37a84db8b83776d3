"""The three attacks of issue 18, played on a simulated clock against the real handler, store and sweeper.

A staggered fleet beats every 15 minutes (signed with its key when authentication is on); the
sweeper runs every 5 minutes; an attacker who can reach the endpoint sends:

- blind: one heartbeat each for (fleet size + 1) never-seen ids, which then stay silent, so that
  most of the fleet is silent while real runners die 1 h and 3 h later (it blinded the guard of
  old, which held on a silent majority; the guard now holds only when nobody is heard);
- keep-alive: the id of a runner that died, every 40 minutes;
- move: the ids of a tenth of the fleet's live 15-minute runners with workerGroup "fast", a group
  (a fifth of the fleet, beating every 3 minutes) with a 10-minute threshold, each sent a second
  after one of the victim's own heartbeats (which would otherwise move it back).

The attacker is an outsider (no key: unsigned requests, or signed with a key nobody issued) or an
insider with a key of their own, scoped to another worker group and capped at 5 runners.
Every request is a real API Gateway event through the real handler; DynamoDB and KMS are moto's.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import random
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from heartbeat.config import DEFAULT_STALE_AFTER_SECONDS, DEFAULT_SWEEP_INTERVAL_SECONDS, AuthMode, Config
from heartbeat.handler import Dependencies, make_handler
from heartbeat.key_cache import KeyCache
from heartbeat.key_secrets import KeySecrets
from heartbeat.observability import logger
from heartbeat.runners import Status
from heartbeat.store import RunnerStore, SweepState
from heartbeat.store.keys import KeyTable
from heartbeat.sweeper import sweep
from heartbeat_local.server import create_keys_kms_key, create_keys_table, create_table, keys_table_name
from heartbeat_ops import keys as key_commands
from tests.support import LambdaContext, heartbeat_event, set_event_header, sign_event

TABLE = "runners-attacked"
START = 1_795_521_600.0  # 2026-11-24T12:00:00Z
PERIOD = 900.0  # the fleet's beat
SWEEP_INTERVAL = float(DEFAULT_SWEEP_INTERVAL_SECONDS)
HOUR = 3600.0
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ATTACKS = ("blind", "keep-alive", "move")
ATTACKERS = ("outsider", "insider")
INSIDER_CAP = 5


@dataclass
class AttackOutcome:
    """What an attack did to the fleet."""

    attack: str
    authenticated: bool
    attacker: str
    size: int
    deaths: int = 0
    deaths_flagged: int = 0
    live_told_to_terminate: int = 0
    attacker_answered: int = 0  # attacker requests answered 200
    attacker_refused: dict[str, int] = field(default_factory=dict)  # error code -> count
    attacker_records: int = 0  # records of ids the fleet never had (the blinding ghosts) left in the table

    @property
    def no_effect(self) -> bool:
        """Every death flagged, and no live runner told to terminate."""
        return self.deaths_flagged == self.deaths and self.live_told_to_terminate == 0


@dataclass
class _Runner:
    taskrunner_id: str
    group: str = "etl"
    period: float = PERIOD
    dies_at: float | None = None
    stopped: bool = False


class AttackSimulation:
    """One attack on one fleet; run() plays it and returns its AttackOutcome."""

    def __init__(self, attack: str, *, authenticated: bool, attacker: str = "outsider", size: int = 100) -> None:
        assert attack in ATTACKS, attack
        assert attacker in ATTACKERS, attacker
        self.attack, self.authenticated, self.attacker, self.size = attack, authenticated, attacker, size
        self.now = START
        self.settled = START + PERIOD + 60
        self.rng = random.Random(f"{attack}/{authenticated}/{attacker}/{size}")  # noqa: S311 - a reproducible fleet
        self.outcome = AttackOutcome(attack, authenticated, attacker, size)
        self.runners = [_Runner(f"etl-{i:05d}") for i in range(size)]
        if attack == "move":  # a fifth of the fleet is the real "fast" group, beating every 3 minutes
            fast = size // 5
            self.runners = self.runners[: size - fast] + [_Runner(f"fast-{i:05d}", "fast", 180.0) for i in range(fast)]
        self.attacker_ids: set[str] = set()
        self.victims = self.runners[: self._victim_count()] if attack == "move" else []

    def clock(self) -> float:
        return self.now

    def _victim_count(self) -> int:
        """A tenth of the fleet (10 at N = 100): few enough that the "fast" group's guard does not hold."""
        return max(1, self.size // 10)

    def run(self) -> AttackOutcome:
        with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
            level = logger.log_level
            logger.setLevel("CRITICAL")
            try:
                self._run()
            finally:
                logger.setLevel(level)
        return self.outcome

    def _run(self) -> None:
        dynamodb = boto3.client("dynamodb", **KEYS)
        create_table(dynamodb, TABLE)
        thresholds = {"fast": 600} if self.attack == "move" else {}
        store = RunnerStore(TABLE, client=dynamodb)
        config = Config(TABLE, stale_after_by_worker_group=thresholds, auth_mode=AuthMode.NONE)
        cache = None
        self.fleet_key: key_commands.IssuedKey | None = None
        self.insider_key: key_commands.IssuedKey | None = None
        if self.authenticated:
            keys_table = keys_table_name(TABLE)
            create_keys_table(dynamodb, keys_table)
            kms = boto3.client("kms", **KEYS)
            secrets = KeySecrets(create_keys_kms_key(kms), client=kms)
            keys = KeyTable(keys_table, dynamodb)
            self.fleet_key = key_commands.issue(keys, secrets, START, worker_groups=["etl", "fast"])
            self.insider_key = key_commands.issue(
                keys, secrets, START, worker_groups=["batch"], max_runners=INSIDER_CAP
            )
            store = RunnerStore(TABLE, client=dynamodb, keys_table_name=keys_table)
            config = Config(
                TABLE, stale_after_by_worker_group=thresholds, auth_mode=AuthMode.SIGV4, keys_table_name=keys_table
            )
            cache = KeyCache(keys, secrets, clock=self.clock)
        # The sweeper has been watching for a day.
        store.save_sweep_state(
            SweepState(last_sweep_at=START - SWEEP_INTERVAL, watching_since=START - 86_400, finished_at=START - 298)
        )
        dependencies = Dependencies(config=config, store=store, clock=self.clock, keys=cache)
        self.handler = make_handler(lambda: dependencies)
        end = self._schedule()
        queue: list[tuple[float, int, str, Any]] = []
        for index, runner in enumerate(self.runners):
            offset = (index + self.rng.uniform(0, 0.8)) / self.size * runner.period
            heapq.heappush(queue, (START + offset, 1, "beat", runner))
        moment = START + 17.0
        while moment < end:
            heapq.heappush(queue, (moment, 0, "sweep", None))
            moment += SWEEP_INTERVAL
        for when, order, kind, payload in self._attacker_moves(end):
            heapq.heappush(queue, (when, order, kind, payload))
        while queue:
            when, order, kind, payload = heapq.heappop(queue)
            self.now = when
            if kind == "sweep":
                sweep(store, config, when, None, clock=lambda start=when: start + 2.0)  # type: ignore[misc]
            elif kind == "beat":
                runner: _Runner = payload
                if runner.stopped or (runner.dies_at is not None and runner.dies_at <= when):
                    continue
                if self._fleet_beat(runner) and when + PERIOD < end:
                    heapq.heappush(queue, (when + runner.period * self.rng.uniform(0.97, 1.03), order, "beat", runner))
                if self.attack == "move" and when >= self.settled and runner in self.victims:
                    self.victims.remove(runner)
                    heapq.heappush(queue, (when + 1.0, 2, "attack", (runner.taskrunner_id, "fast")))
            else:
                self._attacker_beat(payload)
        self.now = end
        self._judge(store)

    def _schedule(self) -> float:
        """Deaths, and the end of the run: long enough for every death to be flagged once past its threshold."""
        if self.attack == "blind":
            self.runners[3].dies_at = self.settled + HOUR
            self.runners[7].dies_at = self.settled + 3 * HOUR
            return self.settled + 3 * HOUR + DEFAULT_STALE_AFTER_SECONDS + 3 * SWEEP_INTERVAL
        if self.attack == "keep-alive":
            self.runners[0].dies_at = self.settled
            return self.settled + 3 * HOUR
        return self.settled + HOUR

    def _attacker_moves(self, end: float) -> list[tuple[float, int, str, Any]]:
        moves: list[tuple[float, int, str, Any]] = []
        if self.attack == "blind":
            # An insider registers the ghosts in the worker group its key may report.
            group = "batch" if self.authenticated and self.attacker == "insider" else "etl"
            moves = [(self.settled + i * 0.5, 2, "attack", (f"ghost-{i:05d}", group)) for i in range(self.size + 1)]
        elif self.attack == "keep-alive":
            moment = self.settled + 60
            while moment < end:
                moves.append((moment, 2, "attack", (self.runners[0].taskrunner_id, "etl")))
                moment += 40 * 60
        return moves  # a move is timed on each victim's own heartbeat (see _run)

    def _fleet_beat(self, runner: _Runner) -> bool:
        """One heartbeat of a live runner (signed with the fleet's key); False once it was told to stop."""
        result = self._send(runner.taskrunner_id, runner.group, self.fleet_key)
        if result["statusCode"] == 200 and json.loads(result["body"])["terminate"]:
            runner.stopped = True
            self.outcome.live_told_to_terminate += 1
            return False
        return True

    def _attacker_beat(self, move: tuple[str, str]) -> None:
        taskrunner_id, group = move
        self.attacker_ids.add(taskrunner_id)
        # Unsigned: with authentication on, an outsider has no key.
        key = self.insider_key if self.authenticated and self.attacker == "insider" else None
        result = self._send(taskrunner_id, group, key)
        if result["statusCode"] == 200:
            self.outcome.attacker_answered += 1
        else:
            code = json.loads(result["body"])["__type"]
            self.outcome.attacker_refused[code] = self.outcome.attacker_refused.get(code, 0) + 1

    def _send(self, taskrunner_id: str, group: str, key: key_commands.IssuedKey | None) -> dict[str, Any]:
        event = heartbeat_event({"taskrunnerId": taskrunner_id, "workerGroup": group})
        if key is not None:
            sign_event(event, key.key.access_key_id, key.secret_access_key, at=self.now)
        else:
            set_event_header(event, "Authorization", None)
        return self.handler(event, LambdaContext())  # type: ignore[arg-type]

    def _judge(self, store: RunnerStore) -> None:
        records = {r.taskrunner_id: r for r in store.runners()}
        fleet = {r.taskrunner_id for r in self.runners}
        for runner in self.runners:
            record = records.get(runner.taskrunner_id)
            if runner.dies_at is None:
                continue
            self.outcome.deaths += 1
            if record is not None and record.status == Status.STALE.value and (record.stale_at or 0) >= runner.dies_at:
                self.outcome.deaths_flagged += 1
        self.outcome.attacker_records = len([i for i in self.attacker_ids if i in records and i not in fleet])


def main() -> int:
    """`python -m tests.simulation.attacks`: every attack, with authentication off and on, at N = 100."""
    widths = (12, 6, 9, 5, 14, 18, 10, 40)
    titles = ("attack", "auth", "attacker", "N", "deaths flagged", "live told to stop", "stored", "attacker's answers")
    print(" | ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)))
    for attack in ATTACKS:
        for authenticated, attacker in ((False, "outsider"), (True, "outsider"), (True, "insider")):
            o = AttackSimulation(attack, authenticated=authenticated, attacker=attacker).run()
            answers = f"{o.attacker_answered} answered, refused {o.attacker_refused or '-'}"
            cells = (
                attack, "sigv4" if authenticated else "none", attacker, str(o.size),
                f"{o.deaths_flagged}/{o.deaths}", str(o.live_told_to_terminate), str(o.attacker_records), answers,
            )  # fmt: skip
            print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
