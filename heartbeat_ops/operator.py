"""The operator's commands over one store, apart from their parsing (``heartbeat_ops.__main__``).

It judges runners by the deployment's rules, never the operator's shell: the sweeper records the
Config it runs with in its state item on every sweep, and this reads it from there. It judges and
sweeps on the service's time, never the operator's clock: DynamoDB's, from its answers' Date header.
"""

from __future__ import annotations

import getpass
import itertools
import json
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from heartbeat.clients import OPERATOR_CLIENT_CONFIG
from heartbeat.config import Config, ConfigError
from heartbeat.events import StaleEventPublisher, iso
from heartbeat.flagging import Deadline, FlagOrder
from heartbeat.key_secrets import KeySecrets
from heartbeat.plan import SweepPlan, SweepState, Verdict, plan_sweep, scope_name
from heartbeat.runners import Runner, Status
from heartbeat.store import RunnerStore, SweepCandidate, UnknownRunner
from heartbeat.store.keys import KeyCensus, KeyTable
from heartbeat.store.operator import RebindRefused
from heartbeat.store.scan import StatusCounts
from heartbeat.sweeper import SweepInProgress, scan, sweep
from heartbeat_ops import key_view, progress, view
from heartbeat_ops import keys as key_commands
from heartbeat_ops.local import keys_kms_alias, keys_table_name

SKEW_NOTE_SECONDS = 60  # a clock this far from the service's earns a note on stderr

# An operator's sweep stops starting flags after this long, as a scheduled one does (its lease covers it).
OPERATOR_SWEEP_SECONDS = 240


class OperatorError(Exception):
    """A one-line message for the operator; exit status 1 unless it says another."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Exit:
    """heartbeat-ops' exit statuses (docs/operations.md)."""

    OK = 0
    ERROR = 1  # a one-line error on stderr: unknown runner, missing table, credentials, ...
    USAGE = 2  # a command line it cannot take (click's own status for usage errors)
    HELD = 3  # runners sweep: the guard held a scope, so its runners past their threshold were not flagged
    BUSY = 4  # runners sweep: another sweep holds the lease; try again after it (nothing was read or written)
    PIPE = 141  # the reader of stdout went away (`| head`): 128 + SIGPIPE, as a shell tool killed by it


class ShownStore(RunnerStore):
    """The store, its two scans shown as progress on stderr (when a terminal) as they stream."""

    err: TextIO | None = None

    def with_progress(self, err: TextIO) -> ShownStore:
        self.err = err
        return self

    def runners(self) -> Iterator[Runner]:
        return progress.shown(super().runners(), self.err, "Scanning runners")

    def sweep_candidates(
        self, now: float, census: KeyCensus | None = None, statuses: StatusCounts | None = None
    ) -> Iterator[SweepCandidate]:
        return progress.shown(super().sweep_candidates(now, census, statuses), self.err, "Scanning runners")


def aws_session(args: SimpleNamespace) -> boto3.session.Session:
    """The session for --region; against an --endpoint-url of your own (make serve's), which takes any
    region and credentials, it stands in for an AWS configuration this machine may not have."""
    session = boto3.session.Session(region_name=args.region)
    if args.endpoint_url and (session.region_name is None or session.get_credentials() is None):
        session = boto3.session.Session(
            region_name=session.region_name or "us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - a placeholder, only sent to --endpoint-url
        )
    return session


def read_events(args: SimpleNamespace, out: TextIO) -> int:
    """Print every stale event waiting in the queue, one line each, deleting each once printed; return how many."""
    sqs = aws_session(args).client("sqs", endpoint_url=args.endpoint_url, config=OPERATOR_CLIENT_CONFIG)
    try:
        return _drain_events(sqs, sqs.get_queue_url(QueueName=args.queue)["QueueUrl"], args.json, out)
    except ClientError as error:
        raise OperatorError(f"queue {args.queue!r}: {error.response['Error']['Message']}") from None
    except (NoCredentialsError, NoRegionError):
        raise
    except BotoCoreError as error:
        raise OperatorError(f"queue {args.queue!r}: {error}") from error


def _drain_events(sqs: Any, queue_url: str, as_json: bool, out: TextIO) -> int:
    count = 0
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            event = json.loads(message["Body"])
            if as_json:
                out.write(json.dumps(event) + "\n")
            else:
                d = {k: view.printable(str(v)) for k, v in event.get("detail", {}).items()}
                out.write(
                    f"{d.get('staleAt')}  {d.get('taskrunnerId')}  workerGroup={d.get('workerGroup')}  "
                    f"hostname={d.get('hostname')}  lastSeen={d.get('lastSeen')}  "
                    f"staleAfterSeconds={d.get('staleAfterSeconds')}\n"
                )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            count += 1
    return count


class ServiceClock:
    """The service's time: DynamoDB's clock read once, then advanced by this machine's monotonic clock."""

    def __init__(self, store: RunnerStore) -> None:
        self.started = store.service_time()
        self._at = time.monotonic()

    def __call__(self) -> float:
        return self.started + (time.monotonic() - self._at)


@dataclass(frozen=True)
class Deployment:
    """What the deployment's sweeper recorded: its state, and the rules it judges with (None before its first run)."""

    state: SweepState | None
    config: Config | None

    def plan(self, now: float) -> SweepPlan | None:
        """The plan as of the last sweep's holds, for list and show (which do not scan the fleet first)."""
        return None if self.config is None else plan_sweep(None, self.config, now, self.state)


class Operator:
    """The commands, over one store, with the deployment's rules and the service's time."""

    def __init__(self, args: SimpleNamespace, clock: Callable[[], float], out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.session = aws_session(args)
        self._outputs: dict[str, str] | None = None
        self.table = self._table_name()
        self.keys_table = self._located("keys_table", "KeysTableName", "KEYS_TABLE_NAME", keys_table_name)
        self.store = ShownStore(
            self.table, client=self._client("dynamodb"), keys_table_name=self.keys_table
        ).with_progress(err)
        self.clock = ServiceClock(self.store)
        skew = round(clock() - self.clock.started)
        if abs(skew) > SKEW_NOTE_SECONDS:
            err.write(
                f"note: this machine's clock is {view.age(abs(skew)).removesuffix(' ago')} "
                f"{'ahead of' if skew > 0 else 'behind'} the service's; times here are the service's\n"
            )
        state = self.store.load_sweep_state()
        try:
            config = Config.from_record(self.table, state.settings) if state and state.settings else None
        except (ConfigError, KeyError, TypeError, ValueError) as error:
            raise OperatorError(f"the sweeper's recorded settings are unreadable: {error}") from None
        self.deployment = Deployment(state, config)

    def _client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.args.endpoint_url, config=OPERATOR_CLIENT_CONFIG)  # type: ignore[call-overload]

    def _stack_outputs(self) -> dict[str, str]:
        if self._outputs is None:
            try:
                stacks = self._client("cloudformation").describe_stacks(StackName=self.args.stack)["Stacks"]
            except ClientError as error:
                raise OperatorError(f"Stack {self.args.stack!r}: {error.response['Error']['Message']}") from None
            self._outputs = {o["OutputKey"]: str(o["OutputValue"]) for o in stacks[0].get("Outputs", [])}
        return self._outputs

    def _table_name(self) -> str:
        if self.args.table:
            return str(self.args.table)
        if self.args.stack:
            if "TableName" in self._stack_outputs():
                return self._stack_outputs()["TableName"]
            raise OperatorError(f"Stack {self.args.stack!r} has no TableName output")
        return os.environ["TABLE_NAME"]  # target_make_serve named make serve's table when nothing else was

    def _rules(self) -> Config:
        """The deployment's rules; sweeping without them would judge by someone else's."""
        if self.deployment.config is None:
            raise OperatorError(
                f"the sweeper has not recorded its settings in table {self.table!r} yet (it does on every run): "
                "wait for its first scheduled run"
            )
        return self.deployment.config

    def _located(self, flag: str, output: str, variable: str, local: Callable[[str], str]) -> str | None:
        """A keys setting: the flag, the stack's output, the environment, or make serve's name for it."""
        given = getattr(self.args, flag, None)
        if given:
            return str(given)
        if self.args.stack:
            return self._stack_outputs().get(output)
        if os.environ.get(variable):
            return os.environ[variable]
        return local(self.table) if self.args.endpoint_url else None

    def _keys(self) -> KeyTable:
        if not self.keys_table:
            raise OperatorError("Say which keys table: --keys-table NAME, --stack NAME, or KEYS_TABLE_NAME")
        return KeyTable(self.keys_table, self.store.client)

    def _secrets(self) -> KeySecrets:
        kms_key = self._located("kms_key", "KeysKmsKeyArn", "KEYS_KMS_KEY_ID", keys_kms_alias)
        if not kms_key:
            raise OperatorError("Say which KMS key seals the secrets: --kms-key ID, --stack NAME, or KEYS_KMS_KEY_ID")
        return KeySecrets(kms_key, client=self._client("kms"))

    def write(self, line: str = "") -> None:
        self.out.write(line + "\n")

    def list(self) -> None:
        now = self.clock()
        plan = self.deployment.plan(now)
        runners = self.store.runners() if not progress.on_terminal(self.out) else RunnerStore.runners(self.store)
        matching = (
            r
            for r in runners  # rows streaming to a terminal are their own progress
            if (self.args.status is None or r.status == self.args.status)
            and (self.args.worker_group is None or r.worker_group == self.args.worker_group)
        )
        first = next(matching, None)  # fail (missing table, credentials) before printing anything
        chained = itertools.chain([first] if first else [], matching)
        if self.args.json:  # a JSON array, streamed one runner at a time
            self.out.write("[")
            for index, runner in enumerate(chained):
                self.out.write(("," if index else "") + "\n  " + json.dumps(view.as_json(runner, plan)))
            self.write("\n]")
            return
        for line in view.table(view.row(r, now, plan) for r in chained):
            self.write(line)
        if plan is None:
            self.err.write("note: the sweeper has not recorded its settings yet: stored statuses only\n")

    def _get(self) -> Any:
        runner = self.store.get_runner(self.args.id)
        if runner is None:
            raise UnknownRunner(self.args.id)
        return runner

    def show(self) -> None:
        runner = self._get()
        now = self.clock()
        plan = self.deployment.plan(now)
        if self.args.json:
            self.write(json.dumps(view.as_json(runner, plan), indent=2))
            return
        for line in view.details(runner, now, plan):
            self.write(line)

    # terminate, reset, retire: one runner by id, or a selection (--worker-group, --status, --all)

    def terminate(self) -> int:
        if self.args.id is None:
            by = self._who()
            return self._bulk("terminate", lambda r: self.store.request_terminate(
                r, by=by, reason=self.args.reason, now=self.clock()))  # fmt: skip
        by = self._who()
        self.store.request_terminate(self.args.id, by=by, reason=self.args.reason, now=self.clock())
        reason = f": {self.args.reason}" if self.args.reason else ""
        runner_id = view.printable(self.args.id)
        self.write(f"Runner {runner_id} will be told to terminate at its next heartbeat (requested by {by}{reason})")
        return Exit.OK

    def reset(self) -> int:
        if self.args.id is None:
            return self._bulk("reset", lambda r: self.store.reset(r, now=self.clock()))
        runner = self.store.reset(self.args.id, now=self.clock())
        config = self.deployment.config
        threshold = (
            f"{config.stale_after_for(runner.worker_group)} s (its threshold)"
            if config
            else "its threshold (not recorded yet: the sweeper has not run)"
        )
        self.write(
            f"Runner {view.printable(self.args.id)} is active again: its next heartbeat answers terminate: false, "
            f"and the sweeper will not flag it unless it stays silent for more than {threshold} from now"
        )
        return Exit.OK

    def retire(self) -> int:
        if self.args.id is None:
            by = self._who()
            return self._bulk(
                "retire", lambda r: self.store.retire(r, by=by, reason=self.args.reason, now=self.clock())
            )
        by = self._who()
        self.store.retire(self.args.id, by=by, reason=self.args.reason, now=self.clock())
        self.write(
            f"Runner {view.printable(self.args.id)} retired (by {by}): it has left the fleet, is never flagged and "
            "sends no stale event; if it beats again it is told to terminate (heartbeat-ops runners reset undoes this)"
        )
        return Exit.OK

    def _selection(self) -> str:
        parts = [f"worker group {self.args.worker_group!r}"] if self.args.worker_group is not None else []
        parts += [f"status {self.args.status}"] if self.args.status is not None else []
        return " and ".join(parts) or "every runner (--all)"

    def _bulk(self, verb: str, write: Callable[[str], Runner]) -> int:
        """The command on every runner selected, each with its own conditional single-runner write.

        The selection is read first (a scan), then written runner by runner: a runner that is gone by
        then (expired, forgotten) is skipped and counted, and a heartbeat or another operator landing
        between the scan and a write is ordered by DynamoDB exactly as for one runner.
        """
        now = self.clock()
        plan = self.deployment.plan(now)
        selected = [
            r
            for r in self.store.runners()
            if (self.args.worker_group is None or r.worker_group == self.args.worker_group)
            and (self.args.status is None or r.status == self.args.status)
            and r.expires_at > now  # past its retention: gone, whatever DynamoDB still holds
        ]
        if self.args.dry_run:
            self.write(f"Dry run: would {verb} {len(selected)} runners ({self._selection()}); nothing is changed")
            if selected:
                for line in view.table(view.row(r, now, plan) for r in selected):
                    self.write(line)
            return Exit.OK
        done: list[str] = []
        gone = 0
        for runner in progress.shown(selected, self.err, verb.capitalize(), length=len(selected)):
            try:
                write(runner.taskrunner_id)
            except UnknownRunner:
                gone += 1
                continue
            done.append(runner.taskrunner_id)
        past = {"terminate": "told to terminate at their next heartbeat", "reset": "reset to active",
                "retire": "retired"}[verb]  # fmt: skip
        line = f"{len(done)} of {len(selected)} runners selected ({self._selection()}) {past}"
        if done:
            line += ": " + view.named(done)
        self.write(line)
        if gone:
            self.write(f"{gone} were gone by the time of their write (expired or forgotten): unchanged")
        return Exit.OK

    def forget(self) -> None:
        self.store.forget(self.args.id)
        self.write(f"Forgot runner {view.printable(self.args.id)}")

    def summary(self) -> None:
        now = self.clock()
        counts = FleetCounts.of(self.store.runners())
        if self.args.json:
            self.write(json.dumps(counts.as_json(), indent=2))
            return
        for line in counts.lines(now):
            self.write(line)

    def status(self) -> None:
        """The sweeper's state (read-only): last sweep, watch, held scopes, the rules, and the fleet's counts."""
        now = self.clock()
        state, config = self.deployment.state, self.deployment.config
        counts = FleetCounts.of(self.store.runners())
        if self.args.json:
            self.write(json.dumps(view.status_json(state, config, now) | {"fleet": counts.as_json()}, indent=2))
            return
        for line in view.status_lines(state, config, now):
            self.write(line)
        for line in counts.lines(now):
            self.write(line)

    def sweep(self) -> int:
        config = self._rules()
        if self.args.dry_run:
            return self._dry_run(config)
        events = StaleEventPublisher(config.event_bus_name, client=self._client("events"))
        now = self.clock()
        flagged: list[str] = []

        def named(order: FlagOrder) -> None:
            flagged.append(order.taskrunner_id)

        try:
            report = sweep(
                self.store, config, now, events, override_guard=self.args.override_guard, clock=self.clock,
                on_flag=named, deadline=Deadline(OPERATOR_SWEEP_SECONDS),
            )  # fmt: skip
        except SweepInProgress as busy:
            raise OperatorError(
                f"Another sweep is running (its lease ends by {iso(busy.until)}): try again after it", Exit.BUSY
            ) from None
        if report.watching_since == now:
            self.write(
                "The sweeper had not run for longer than the threshold: a new watch starts now, "
                "and every runner gets one full threshold of grace"
            )
        for scope, state in report.scopes.items():
            self.write(f"{scope}: {state}")
        self.write(
            f"Examined {report.examined} active runners: {report.silent} silent, {report.stale} past their threshold, "
            f"{report.flagged} flagged, {report.in_grace} in grace; "
            f"{report.events_published} stale events published, {report.events_owed} still owed"
        )
        if flagged:
            self.write(f"Flagged {view.named(flagged)}: their next heartbeat answers terminate: true")
        if report.left:
            self.write(f"{report.left} stale runners not reached in {OPERATOR_SWEEP_SECONDS} s: run again to go on")
        if not report.held:
            return Exit.OK
        if self.args.override_guard:
            self.write(f"Held ({', '.join(report.held)}): overridden, their stale runners were flagged")
            return Exit.OK
        self.write(
            f"Held ({', '.join(report.held)}): none of their runners flagged. "
            "If those runners really are gone, run again with --override-guard"
        )
        return Exit.HELD

    def _dry_run(self, config: Config) -> int:
        now = self.clock()
        scanned = scan(self.store, config, now, override_guard=self.args.override_guard)
        plan = scanned.plan
        self.write(f"Dry run at {iso(int(now))} (the service's time), with the deployment's rules; nothing is changed")
        for note in plan.notes:
            self.write(f"Note: {note}")
        for scope, decision in plan.scopes.items():
            held = ", held: none of its runners is flagged" if decision.state.held and not plan.override_guard else ""
            self.write(f"{scope_name(scope)}: {decision.state.value} ({decision.why}){held}")
        for short in plan.short_thresholds:
            group = "no worker group" if short.worker_group is None else f"worker group {short.worker_group!r}"
            self.write(
                f"Warning: {group} beats about every {short.period:.0f} s, and its threshold of {short.threshold} s "
                "is under twice that"
            )
        counts = {Verdict.STALE: 0, Verdict.GRACE: 0}
        for candidate, judgement in scanned.past_threshold:
            counts[judgement.verdict] = counts.get(judgement.verdict, 0) + 1
            word = "would flag" if judgement.verdict is Verdict.STALE else "in grace  "
            self.write(f"{word}  {view.printable(candidate.taskrunner_id)}: {judgement.why}")
        self.write(
            f"Would flag {counts[Verdict.STALE]} of {scanned.census.scope(None).active} active runners; "
            f"{counts[Verdict.GRACE]} in grace; {len(scanned.owed)} stale events owed from earlier flags"
        )
        return Exit.OK

    def rebind(self) -> None:
        stored = self._keys().get(self.args.key)
        if stored is None:
            raise OperatorError(f"no key {self.args.key}")
        try:
            runner = self.store.rebind(self.args.id, stored.key, self.clock())
        except RebindRefused as refused:
            raise OperatorError(f"runner {view.printable(self.args.id)} stays where it is: {refused}") from None
        self.write(f"Runner {view.printable(runner.taskrunner_id)} is bound to key {runner.key_id}")

    # keys

    def keys_create(self) -> None:
        issued = key_commands.issue(
            self._keys(), self._secrets(), self.clock(), worker_groups=self.args.worker_groups,
            max_runners=self.args.max_runners, description=self.args.description,
        )  # fmt: skip
        self._print_issued(issued)

    def keys_rotate(self) -> None:
        issued = key_commands.rotate(self._keys(), self._secrets(), self.args.id, self.clock())
        self._print_issued(issued)
        if not self.args.json:
            self.write(
                f"Runners of {self.args.id} move to {issued.key.access_key_id} at their first heartbeat signed with "
                f"it; both keys work meanwhile. Once `keys list` shows {self.args.id} with 0 runners, revoke it."
            )

    def _print_issued(self, issued: key_commands.IssuedKey) -> None:
        if self.args.json:
            self.write(json.dumps(issued.as_credentials()))
            return
        self.write(f"AccessKeyId      {issued.key.access_key_id}")
        self.write(f"SecretAccessKey  {issued.secret_access_key}")
        self.write(f"WorkerGroups     {key_view.scope(issued.key)}")
        self.write(f"MaxRunners       {issued.key.max_runners if issued.key.max_runners is not None else '-'}")
        self.write("The secret is shown this once; store it where the runners read their credentials.")

    def keys_list(self) -> None:
        keys = list(key_commands.listing(self._keys()))
        if self.args.json:
            self.write(json.dumps([key_view.as_json(key) for key in keys], indent=2))
            return
        for line in key_view.table(keys, self.clock()):
            self.write(line)

    def keys_revoke(self) -> None:
        key = key_commands.revoke(self._keys(), self.args.id, self.clock())
        self.write(
            f"Key {key.access_key_id} is revoked: new runners are refused now, and every heartbeat it signs "
            "within 60 s (the handlers' cache bound)"
        )

    def _who(self) -> str:
        try:
            return str(self._client("sts").get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError):
            return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass
class FleetCounts:
    """Every runner record counted by status and worker group, and the oldest last seen among active ones."""

    by_status: Counter[str] = field(default_factory=Counter)
    by_group: dict[str, Counter[str]] = field(default_factory=dict)
    oldest: tuple[float, str] | None = None

    @classmethod
    def of(cls, runners: Iterator[Runner]) -> FleetCounts:
        counts = cls()
        for runner in runners:
            counts.by_status[runner.status] += 1
            group = runner.worker_group if runner.worker_group is not None else "-"
            counts.by_group.setdefault(group, Counter())[runner.status] += 1
            if runner.status == Status.ACTIVE.value and (counts.oldest is None or runner.last_seen < counts.oldest[0]):
                counts.oldest = (runner.last_seen, runner.taskrunner_id)
        return counts

    def as_json(self) -> dict[str, Any]:
        statuses = [s.value for s in Status]
        oldest = self.oldest
        return {
            "runners": sum(self.by_status.values()),
            "byStatus": {s: self.by_status[s] for s in statuses},
            "byWorkerGroup": {g: {s: c[s] for s in statuses} for g, c in sorted(self.by_group.items())},
            "oldestActive": None if oldest is None else {"taskrunnerId": oldest[1], "lastSeen": iso(oldest[0])},
        }

    def lines(self, now: float) -> Iterator[str]:
        statuses = [s.value for s in Status]
        counts = ", ".join(f"{s} {self.by_status[s]}" for s in statuses)
        yield f"Runners: {sum(self.by_status.values())} ({counts})"
        if self.by_group:
            width = max(len("WORKER GROUP"), *(len(view.printable(g)) for g in self.by_group))
            yield "WORKER GROUP".ljust(width) + "".join(f"  {s.upper():>11}" for s in statuses)
            for group, counter in sorted(self.by_group.items()):
                yield view.printable(group).ljust(width) + "".join(f"  {counter[s]:>11}" for s in statuses)
        if self.oldest is None:
            yield "Oldest last seen among active runners: none active"
        else:
            yield (
                f"Oldest last seen among active runners: {view.printable(self.oldest[1])}, "
                f"{view.age(now - self.oldest[0])}"
            )
