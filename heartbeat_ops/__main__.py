"""``python -m heartbeat_ops`` (or ``heartbeat-ops``): operate on the runners and the access keys.

Against the deployed stack: ``--stack NAME`` (the tables and the KMS key from its outputs) or
``--table`` (with ``--keys-table`` and ``--kms-key`` for the key commands), with the usual AWS
credential chain. Against ``make serve``: nothing to give; with no table, stack or endpoint named,
it works on make serve's embedded store (``heartbeat_ops.local``), keys and KMS included.

It judges runners by the deployment's rules, never the operator's shell: the sweeper records the
Config it runs with in its state item on every sweep, and this reads it from there. It judges and
sweeps on the service's time, never the operator's clock: DynamoDB's, from its answers' Date header.
"""

from __future__ import annotations

import argparse
import getpass
import itertools
import json
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from heartbeat.clients import CLIENT_CONFIG
from heartbeat.config import Config, ConfigError
from heartbeat.events import StaleEventPublisher, iso
from heartbeat.flagging import Deadline
from heartbeat.key_secrets import KeySecrets, SecretsUnavailable
from heartbeat.observability import logger
from heartbeat.plan import SweepPlan, SweepState, Verdict, plan_sweep, scope_name
from heartbeat.runners import Status
from heartbeat.store import RunnerStore, StoreError, UnknownRunner
from heartbeat.store.keys import KeyTable
from heartbeat.store.operator import RebindRefused
from heartbeat.sweeper import SweepInProgress, scan, sweep
from heartbeat_ops import key_view, view
from heartbeat_ops import keys as key_commands
from heartbeat_ops.local import LOCAL_STORE_URL, LOCAL_TABLE_NAME, STALE_EVENTS_QUEUE, keys_kms_alias, keys_table_name

SKEW_NOTE_SECONDS = 60  # a clock this far from the service's earns a note on stderr

# An operator's sweep stops starting flags after this long, as a scheduled one does (its lease covers it).
OPERATOR_SWEEP_SECONDS = 240


class OperatorError(Exception):
    """A one-line message for the operator; exit status 1."""


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where the runners are")
    where.add_argument(
        "--table", help=f"the runners table (default: from --stack, or TABLE_NAME, or make serve's {LOCAL_TABLE_NAME})"
    )
    where.add_argument("--stack", help="a deployed stack whose TableName output names the table")
    where.add_argument(
        "--endpoint-url",
        help=f"a DynamoDB endpoint (default: make serve's store, {LOCAL_STORE_URL}, when no table or stack is named)",
    )
    where.add_argument(
        "--region", help="the AWS region (default: the usual AWS configuration; us-east-1 with --endpoint-url)"
    )
    where.add_argument(
        "--keys-table", help="the keys table (default: from --stack, KEYS_TABLE_NAME, or make serve's beside --table)"
    )
    where.add_argument(
        "--kms-key", help="the KMS key that seals key secrets (default: from --stack, KEYS_KMS_KEY_ID, or make serve's)"
    )

    top = argparse.ArgumentParser(prog="heartbeat-ops", description=__doc__.splitlines()[0])
    groups = top.add_subparsers(dest="group", required=True)
    runners = groups.add_parser("runners", help="the task runners")
    commands = runners.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", parents=[common], help="list runners (streamed, paginated)")
    listing.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--worker-group")
    listing.add_argument("--json", action="store_true", help="a JSON array, every field")
    show = commands.add_parser("show", parents=[common], help="one runner, every field")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    terminate = commands.add_parser(
        "terminate", parents=[common], help="tell the runner to stop at its next heartbeat (a graceful drain)"
    )
    terminate.add_argument("id")
    terminate.add_argument("--reason")
    reset = commands.add_parser("reset", parents=[common], help="clear a stale, terminate or retired status")
    reset.add_argument("id")
    retire = commands.add_parser(
        "retire",
        parents=[common],
        help="the runner leaves the fleet on purpose (e.g. from a shutdown hook): never flagged, no stale event",
    )
    retire.add_argument("id")
    retire.add_argument("--reason")
    forget = commands.add_parser("forget", parents=[common], help="delete the runner's record")
    forget.add_argument("id")
    summary = commands.add_parser("summary", parents=[common], help="counts by status and worker group")
    summary.add_argument("--json", action="store_true")
    sweep_now = commands.add_parser(
        "sweep", parents=[common], help="run the sweeper now, on the service's time and the deployment's rules"
    )
    sweep_now.add_argument(
        "--override-guard",
        action="store_true",
        help="flag past held scopes and their grace (only once you have confirmed the runners are gone)",
    )
    sweep_now.add_argument(
        "--dry-run", action="store_true", help="print who would be flagged and why, and change nothing"
    )
    rebind = commands.add_parser(
        "rebind", parents=[common], help="move a runner to another access key (within its scope and cap)"
    )
    rebind.add_argument("id")
    rebind.add_argument("--key", required=True, help="the access key id the runner moves to")

    _key_commands(groups, common)

    events = groups.add_parser(
        "events",
        help="read (and remove) the stale events a queue received, e.g. make serve's",
        description="Reads the stale events that an EventBridge rule delivered to an SQS queue, one line each, "
        "and deletes them from the queue once printed.",
    )
    events.add_argument(
        "--endpoint-url", help=f"the queue's endpoint (default: make serve's store, {LOCAL_STORE_URL}, unless --queue)"
    )
    events.add_argument("--queue", help=f"the queue's name (default: make serve's {STALE_EVENTS_QUEUE})")
    events.add_argument(
        "--region", help="the AWS region (default: the usual AWS configuration; us-east-1 with --endpoint-url)"
    )
    events.add_argument("--json", action="store_true", help="one JSON event per line, as EventBridge delivered it")
    return top


def target_make_serve(args: argparse.Namespace, env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Fill in make serve's store where nothing else is named; whether that is where heartbeat-ops now works.

    Runners: no --table, --stack, TABLE_NAME or --endpoint-url; with an --endpoint-url alone, make serve's
    table. Events: no --endpoint-url and no --queue; with a --queue alone, that queue in AWS.
    """
    if args.group == "events":
        if args.queue is None and args.endpoint_url is None:
            args.queue, args.endpoint_url = STALE_EVENTS_QUEUE, LOCAL_STORE_URL
            return True
        args.queue = args.queue or STALE_EVENTS_QUEUE
        return False
    if args.table or args.stack or env.get("TABLE_NAME"):
        return False
    args.table = LOCAL_TABLE_NAME
    if args.endpoint_url is None:
        args.endpoint_url = LOCAL_STORE_URL
        return True
    return False


def _key_commands(groups: Any, common: argparse.ArgumentParser) -> None:
    keys = groups.add_parser("keys", help="the access keys that sign heartbeats (AUTH_MODE=sigv4)")
    key_parsers = keys.add_subparsers(dest="command", required=True)
    create = key_parsers.add_parser(
        "create", parents=[common], help="issue a key; its secret is printed once, here, and never again"
    )
    create.add_argument(
        "--worker-group", action="append", dest="worker_groups", metavar="G",
        help="a worker group the key may report (repeat for more; default: any)",
    )  # fmt: skip
    create.add_argument("--max-runners", type=int, help="how many runners the key may have at once (default: no cap)")
    create.add_argument("--description")
    create.add_argument("--json", action="store_true", help='print {"accessKeyId": ..., "secretAccessKey": ...}')
    key_list = key_parsers.add_parser("list", parents=[common], help="every key: scope, cap, runners, status, last use")
    key_list.add_argument("--json", action="store_true")
    revoke = key_parsers.add_parser(
        "revoke", parents=[common], help="revoke a key: refused at once for new runners, everywhere within 60 s"
    )
    revoke.add_argument("id")
    rotate = key_parsers.add_parser(
        "rotate", parents=[common],
        help="issue a key with the same scope and cap; its runners move to it as their hosts switch, with no gap",
    )  # fmt: skip
    rotate.add_argument("id")
    rotate.add_argument("--json", action="store_true")


def aws_session(args: argparse.Namespace) -> boto3.session.Session:
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


def read_events(args: argparse.Namespace, out: TextIO) -> int:
    """Print every stale event waiting in the queue, one line each, deleting each once printed; return how many."""
    sqs = aws_session(args).client("sqs", endpoint_url=args.endpoint_url, config=CLIENT_CONFIG)
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

    def __init__(self, args: argparse.Namespace, clock: Callable[[], float], out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.session = aws_session(args)
        self._outputs: dict[str, str] | None = None
        self.table = self._table_name()
        self.keys_table = self._located("keys_table", "KeysTableName", "KEYS_TABLE_NAME", keys_table_name)
        self.store = RunnerStore(self.table, client=self._client("dynamodb"), keys_table_name=self.keys_table)
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
        return self.session.client(service, endpoint_url=self.args.endpoint_url, config=CLIENT_CONFIG)  # type: ignore[call-overload]

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
        matching = (
            r
            for r in self.store.runners()
            if (self.args.status is None or r.status == self.args.status)
            and (self.args.worker_group is None or r.worker_group == self.args.worker_group)
        )
        first = next(matching, None)  # fail (missing table, credentials) before printing anything
        runners = itertools.chain([first] if first else [], matching)
        if self.args.json:  # a JSON array, streamed one runner at a time
            self.out.write("[")
            for index, runner in enumerate(runners):
                self.out.write(("," if index else "") + "\n  " + json.dumps(view.as_json(runner, plan)))
            self.write("\n]")
            return
        for line in view.table(view.row(r, now, plan) for r in runners):
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

    def terminate(self) -> None:
        by = self._who()
        self.store.request_terminate(self.args.id, by=by, reason=self.args.reason, now=self.clock())
        reason = f": {self.args.reason}" if self.args.reason else ""
        runner_id = view.printable(self.args.id)
        self.write(f"Runner {runner_id} will be told to terminate at its next heartbeat (requested by {by}{reason})")

    def reset(self) -> None:
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

    def retire(self) -> None:
        by = self._who()
        self.store.retire(self.args.id, by=by, reason=self.args.reason, now=self.clock())
        self.write(
            f"Runner {view.printable(self.args.id)} retired (by {by}): it has left the fleet, is never flagged and "
            "sends no stale event; if it beats again it is told to terminate (heartbeat-ops runners reset undoes this)"
        )

    def forget(self) -> None:
        self.store.forget(self.args.id)
        self.write(f"Forgot runner {view.printable(self.args.id)}")

    def summary(self) -> None:
        now = self.clock()
        by_status: Counter[str] = Counter()
        by_group: dict[str, Counter[str]] = {}
        oldest: tuple[float, str] | None = None
        for runner in self.store.runners():
            by_status[runner.status] += 1
            by_group.setdefault(runner.worker_group if runner.worker_group is not None else "-", Counter())[
                runner.status
            ] += 1
            if runner.status == Status.ACTIVE.value and (oldest is None or runner.last_seen < oldest[0]):
                oldest = (runner.last_seen, runner.taskrunner_id)
        statuses = [s.value for s in Status]
        if self.args.json:
            self.write(json.dumps({
                "runners": sum(by_status.values()),
                "byStatus": {s: by_status[s] for s in statuses},
                "byWorkerGroup": {g: {s: c[s] for s in statuses} for g, c in sorted(by_group.items())},
                "oldestActive": None if oldest is None else {"taskrunnerId": oldest[1], "lastSeen": iso(oldest[0])},
            }, indent=2))  # fmt: skip
            return
        counts = ", ".join(f"{s} {by_status[s]}" for s in statuses)
        self.write(f"Runners: {sum(by_status.values())} ({counts})")
        if by_group:
            width = max(len("WORKER GROUP"), *(len(g) for g in by_group))
            self.write("WORKER GROUP".ljust(width) + "".join(f"  {s.upper():>11}" for s in statuses))
            for group, counter in sorted(by_group.items()):
                self.write(group.ljust(width) + "".join(f"  {counter[s]:>11}" for s in statuses))
        if oldest is None:
            self.write("Oldest last seen among active runners: none active")
        else:
            self.write(f"Oldest last seen among active runners: {oldest[1]}, {view.age(now - oldest[0])}")

    def sweep(self) -> None:
        config = self._rules()
        if self.args.dry_run:
            self._dry_run(config)
            return
        events = StaleEventPublisher(config.event_bus_name, client=self._client("events"))
        now = self.clock()
        try:
            report = sweep(
                self.store, config, now, events, override_guard=self.args.override_guard, clock=self.clock,
                deadline=Deadline(OPERATOR_SWEEP_SECONDS),
            )  # fmt: skip
        except SweepInProgress as busy:
            raise OperatorError(
                f"Another sweep is running (its lease ends by {iso(busy.until)}): try again after it"
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
        if report.left:
            self.write(f"{report.left} stale runners not reached in {OPERATOR_SWEEP_SECONDS} s: run again to go on")
        if report.held:
            if self.args.override_guard:
                self.write(f"Held ({', '.join(report.held)}): overridden, their stale runners were flagged")
            else:
                self.write(
                    f"Held ({', '.join(report.held)}): none of their runners flagged. "
                    "If those runners really are gone, run again with --override-guard"
                )

    def _dry_run(self, config: Config) -> None:
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


def main(
    argv: Sequence[str] | None = None,
    clock: Callable[[], float] = time.time,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    args = parser().parse_args(argv)
    level = logger.log_level
    logger.setLevel("CRITICAL")  # the sweeper's JSON log lines are for CloudWatch; this prints its own words
    try:
        return _run(args, clock, out, err)
    finally:
        logger.setLevel(level)


def _run(args: argparse.Namespace, clock: Callable[[], float], out: TextIO, err: TextIO) -> int:
    local = target_make_serve(args)
    table = getattr(args, "table", None)
    try:
        if args.group == "events":
            if not read_events(args, out):
                err.write(f"No stale events waiting in {args.queue}\n")
            return 0
        operator = Operator(args, clock, out, err)
        table = operator.table
        getattr(operator, f"keys_{args.command}" if args.group == "keys" else args.command)()
    except (OperatorError, key_commands.KeyCommandError, SecretsUnavailable) as error:
        if local and isinstance(error.__cause__, EndpointConnectionError):
            err.write(f"error: {_no_make_serve()}\n")
        else:
            err.write(f"error: {error}\n")
        return 1
    except UnknownRunner as error:
        err.write(f"error: no runner {error.args[0]!r} in table {table!r}\n")
        return 1
    except (NoCredentialsError, NoRegionError) as error:
        err.write(f"error: {_credentials_message(error)}\n")
        return 1
    except StoreError as error:
        cause = error.__cause__
        if isinstance(cause, (NoCredentialsError, NoRegionError)):
            err.write(f"error: {_credentials_message(cause)}\n")
        elif local and isinstance(cause, EndpointConnectionError):
            err.write(f"error: {_no_make_serve()}\n")
        elif "ResourceNotFoundException" in str(error):
            err.write(f"error: table {table!r} not found (check --table, --stack and --region)\n")
        else:
            err.write(f"error: DynamoDB failed: {error}\n")
        return 1
    return 0


def _no_make_serve() -> str:
    return (
        f"nothing answers at {LOCAL_STORE_URL}, make serve's store: start make serve, "
        "or name a deployed table with --stack or --table"
    )


def _credentials_message(error: Exception) -> str:
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_DEFAULT_REGION (boto3 does not read AWS_REGION)"
    return "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"


if __name__ == "__main__":
    sys.exit(main())
