"""heartbeat-ops (or python -m heartbeat_ops): operate on the runners and the access keys.

The command line is parsed by click; the commands themselves are heartbeat_ops.operator's.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, TextIO

import click
from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError

from heartbeat.key_secrets import SecretsUnavailable
from heartbeat.observability import logger
from heartbeat.runners import Status
from heartbeat.store import StoreError, UnknownRunner
from heartbeat_ops import keys as key_commands
from heartbeat_ops.local import LOCAL_STORE_URL, LOCAL_TABLE_NAME, STALE_EVENTS_QUEUE
from heartbeat_ops.operator import Exit, Operator, OperatorError, read_events

DISTRIBUTION = "taskrunner-heartbeat"  # the package whose version --version prints
STATUSES = [s.value for s in Status]
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _where(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say where the runners are, on every runners and keys command."""
    options = [
        click.option(
            "--table",
            metavar="NAME",
            help=f"The runners table (default: from --stack, or TABLE_NAME, or make serve's {LOCAL_TABLE_NAME}).",
        ),
        click.option("--stack", metavar="NAME", help="A deployed stack whose TableName output names the table."),
        click.option(
            "--endpoint-url",
            metavar="URL",
            help=f"A DynamoDB endpoint (default: make serve's store, {LOCAL_STORE_URL}, "
            "when no table or stack is named).",
        ),
        click.option(
            "--region",
            metavar="REGION",
            help="The AWS region (default: the usual AWS configuration; us-east-1 with --endpoint-url).",
        ),
        click.option(
            "--keys-table",
            metavar="NAME",
            help="The keys table (default: from --stack, KEYS_TABLE_NAME, or make serve's beside --table).",
        ),
        click.option(
            "--kms-key",
            metavar="KEY",
            help="The KMS key that seals key secrets (default: from --stack, KEYS_KMS_KEY_ID, or make serve's).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _selection(command: Callable[..., Any]) -> Callable[..., Any]:
    """terminate, reset and retire: one runner by ID, or every runner a selection matches."""
    options = [
        click.argument("id", required=False),
        click.option("--worker-group", metavar="GROUP", help="Every runner of this worker group (instead of an ID)."),
        click.option("--status", type=click.Choice(STATUSES), help="Every runner with this status (instead of an ID)."),
        click.option(
            "--all",
            "every",
            is_flag=True,
            help="Every runner in the table: required when no ID, --worker-group or --status narrows the command.",
        ),
        click.option("--dry-run", is_flag=True, help="Print who would be changed, and change nothing."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _take(ctx: click.Context, /, **params: Any) -> None:
    """Record what was asked; main runs it (so that parsing and running stay apart, and testable apart)."""
    group = ctx.parent.info_name if ctx.parent is not None and ctx.parent.parent is not None else ctx.info_name
    command = ctx.info_name if group != ctx.info_name else None
    if "id" in params and ("every" in params or "dry_run" in params):
        _check_selection(ctx, params)
    ctx.obj["args"] = SimpleNamespace(group=group, command=command, **params)


def _check_selection(ctx: click.Context, params: dict[str, Any]) -> None:
    selectors = params["worker_group"] is not None or params["status"] is not None or params["every"]
    if params["id"] is not None and selectors:
        raise click.UsageError("name one runner by ID, or select runners with --worker-group/--status/--all: not both")
    if params["id"] is None and not selectors:
        raise click.UsageError(
            "name a runner by ID, or select runners with --worker-group and/or --status; "
            "to change every runner in the table, say so with --all"
        )
    if params["id"] is not None and params["dry_run"]:
        raise click.UsageError("--dry-run goes with a selection (--worker-group, --status or --all)")


@click.group(context_settings=CONTEXT)
@click.version_option(package_name=DISTRIBUTION, prog_name="heartbeat-ops", message="%(prog)s %(version)s")
def cli() -> None:
    """Operate the task runner heartbeat service: its runners, its access keys, its stale events.

    With no table, stack or endpoint named, it works on make serve's store. Against a deployed stack, name it
    with --stack (or --table), with the usual AWS credentials. It judges runners by the rules the deployment's
    sweeper recorded, on the service's clock, never this shell's settings or this machine's clock.

    Exit status: 0 done, 1 an error (one line on stderr), 2 a command line it cannot take, 3 runners sweep
    held a scope (the guard), 141 the reader of its output went away.
    """


@cli.group(context_settings=CONTEXT)
def runners() -> None:
    """The task runners."""


@runners.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only runners with this status.")
@click.option("--worker-group", metavar="GROUP", help="Only runners of this worker group.")
@click.option("--json", is_flag=True, help="A JSON array, every field.")
@_where
@click.pass_context
def runners_list(ctx: click.Context, /, **params: Any) -> None:
    """List runners (streamed, page by page)."""
    _take(ctx, **params)


@runners.command("show")
@click.argument("id")
@click.option("--json", is_flag=True, help="A JSON object, every field.")
@_where
@click.pass_context
def runners_show(ctx: click.Context, /, **params: Any) -> None:
    """One runner, every field."""
    _take(ctx, **params)


@runners.command("terminate")
@_selection
@click.option("--reason", metavar="TEXT", help="Why, recorded with who and when.")
@_where
@click.pass_context
def runners_terminate(ctx: click.Context, /, **params: Any) -> None:
    """Tell runners to stop at their next heartbeat (a graceful drain)."""
    _take(ctx, **params)


@runners.command("reset")
@_selection
@_where
@click.pass_context
def runners_reset(ctx: click.Context, /, **params: Any) -> None:
    """Clear a stale, terminate or retired status: active again, with a full threshold to beat."""
    _take(ctx, **params)


@runners.command("retire")
@_selection
@click.option("--reason", metavar="TEXT", help="Why, recorded with who and when.")
@_where
@click.pass_context
def runners_retire(ctx: click.Context, /, **params: Any) -> None:
    """Runners leave the fleet on purpose (e.g. from a shutdown hook): never flagged, no stale event."""
    _take(ctx, **params)


@runners.command("forget")
@click.argument("id")
@_where
@click.pass_context
def runners_forget(ctx: click.Context, /, **params: Any) -> None:
    """Delete the runner's record."""
    _take(ctx, **params)


@runners.command("summary")
@click.option("--json", is_flag=True, help="A JSON object.")
@_where
@click.pass_context
def runners_summary(ctx: click.Context, /, **params: Any) -> None:
    """Counts by status and worker group."""
    _take(ctx, **params)


@runners.command("sweep")
@click.option("--override-guard", is_flag=True, help="Flag past held scopes and their grace (only once you have "
              "confirmed the runners are gone).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print who would be flagged and why, and change nothing.")
@_where
@click.pass_context
def runners_sweep(ctx: click.Context, /, **params: Any) -> None:
    """Run the sweeper now, on the service's time and the deployment's rules.

    Prints the scopes' states, the runners it flagged and the scopes it held, and why; exits 3 when
    the guard held a scope (its runners past their threshold were not flagged).
    """
    _take(ctx, **params)


@runners.command("rebind")
@click.argument("id")
@click.option("--key", required=True, metavar="KEY_ID", help="The access key id the runner moves to.")
@_where
@click.pass_context
def runners_rebind(ctx: click.Context, /, **params: Any) -> None:
    """Move a runner to another access key (within its scope and cap)."""
    _take(ctx, **params)


@cli.command("status", context_settings=CONTEXT)
@click.option("--json", is_flag=True, help="A JSON object.")
@_where
@click.pass_context
def status(ctx: click.Context, /, **params: Any) -> None:
    """The sweeper's state, read-only: last sweep, watch, held scopes and why, its rules, the fleet's counts."""
    _take(ctx, **params)


@cli.group(context_settings=CONTEXT)
def keys() -> None:
    """The access keys that sign heartbeats (AUTH_MODE=sigv4)."""


@keys.command("create")
@click.option("--worker-group", "worker_groups", multiple=True, metavar="G",
              help="A worker group the key may report (repeat for more; default: any).")  # fmt: skip
@click.option("--max-runners", type=int, help="How many runners the key may have at once (default: no cap).")
@click.option("--description")
@click.option("--json", is_flag=True, help='Print {"accessKeyId": ..., "secretAccessKey": ...}.')
@_where
@click.pass_context
def keys_create(ctx: click.Context, /, **params: Any) -> None:
    """Issue a key; its secret is printed once, here, and never again."""
    params["worker_groups"] = list(params["worker_groups"]) or None
    _take(ctx, **params)


@keys.command("list")
@click.option("--json", is_flag=True, help="A JSON array.")
@_where
@click.pass_context
def keys_list(ctx: click.Context, /, **params: Any) -> None:
    """Every key: scope, cap, runners, status, last use."""
    _take(ctx, **params)


@keys.command("revoke")
@click.argument("id")
@_where
@click.pass_context
def keys_revoke(ctx: click.Context, /, **params: Any) -> None:
    """Revoke a key: refused at once for new runners, everywhere within 60 s."""
    _take(ctx, **params)


@keys.command("rotate")
@click.argument("id")
@click.option("--json", is_flag=True, help='Print {"accessKeyId": ..., "secretAccessKey": ...}.')
@_where
@click.pass_context
def keys_rotate(ctx: click.Context, /, **params: Any) -> None:
    """Issue a key with the same scope and cap; its runners move to it as their hosts switch, with no gap."""
    _take(ctx, **params)


@cli.command("events", context_settings=CONTEXT)
@click.option(
    "--endpoint-url",
    metavar="URL",
    help=f"The queue's endpoint (default: make serve's store, {LOCAL_STORE_URL}, unless --queue).",
)
@click.option("--queue", metavar="NAME", help=f"The queue's name (default: make serve's {STALE_EVENTS_QUEUE}).")
@click.option(
    "--region",
    metavar="REGION",
    help="The AWS region (default: the usual AWS configuration; us-east-1 with --endpoint-url).",
)
@click.option("--json", is_flag=True, help="One JSON event per line, as EventBridge delivered it.")
@click.pass_context
def events(ctx: click.Context, /, **params: Any) -> None:
    """Read (and remove) the stale events a queue received, e.g. make serve's.

    Prints each stale event that an EventBridge rule delivered to the SQS queue, one line each, and
    deletes it from the queue once printed.
    """
    _take(ctx, **params)


def parse_args(argv: Sequence[str] | None, err: TextIO = sys.stderr) -> SimpleNamespace | int:
    """The command asked for, or an exit status when there is nothing to run (help, --version, a usage error)."""
    holder: dict[str, Any] = {}
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        status = cli.main(args=arguments, prog_name="heartbeat-ops", standalone_mode=False, obj=holder)
    except click.ClickException as error:
        error.show(file=err)
        return error.exit_code
    except click.Abort:
        err.write("Aborted!\n")
        return Exit.ERROR
    return holder["args"] if "args" in holder else int(status or 0)


def target_make_serve(args: SimpleNamespace, env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
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


def main(
    argv: Sequence[str] | None = None,
    clock: Callable[[], float] = time.time,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    parsed = parse_args(argv, err)
    if isinstance(parsed, int):
        return parsed
    level = logger.log_level
    logger.setLevel("CRITICAL")  # the sweeper's JSON log lines are for CloudWatch; this prints its own words
    try:
        return _run(parsed, clock, out, err)
    except BrokenPipeError:
        return _reader_gone(out)
    finally:
        logger.setLevel(level)


def _reader_gone(out: TextIO) -> int:
    """The reader of our output went away (`| head`): stop quietly, as a shell tool killed by SIGPIPE would."""
    if out is sys.stdout:
        # Python flushes stdout again at exit, which would raise once more: point it at nothing first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return Exit.PIPE


def _run(args: SimpleNamespace, clock: Callable[[], float], out: TextIO, err: TextIO) -> int:
    local = target_make_serve(args)
    table = getattr(args, "table", None)
    try:
        if args.group == "events":
            if not read_events(args, out):
                err.write(f"No stale events waiting in {args.queue}\n")
            out.flush()
            return Exit.OK
        operator = Operator(args, clock, out, err)
        table = operator.table
        name = args.group if args.command is None else f"keys_{args.command}" if args.group == "keys" else args.command
        status = getattr(operator, name)()
        out.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return Exit.OK if status is None else int(status)
    except (OperatorError, key_commands.KeyCommandError, SecretsUnavailable) as error:
        if local and isinstance(error.__cause__, EndpointConnectionError):
            err.write(f"error: {_no_make_serve()}\n")
        else:
            err.write(f"error: {error}\n")
            return getattr(error, "exit_code", Exit.ERROR)
    except UnknownRunner as error:
        err.write(f"error: no runner {error.args[0]!r} in table {table!r}\n")
    except (NoCredentialsError, NoRegionError) as error:
        err.write(f"error: {_credentials_message(error)}\n")
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
    return Exit.ERROR


def _no_make_serve() -> str:
    return (
        f"nothing answers at {LOCAL_STORE_URL}, make serve's store: start make serve, "
        "or name a deployed table with --stack or --table"
    )


def _credentials_message(error: Exception) -> str:
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_DEFAULT_REGION (boto3 does not read AWS_REGION)"
    return "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"


def entry_point() -> None:
    """The installed heartbeat-ops script."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
