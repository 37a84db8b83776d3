"""The test kit answers as make serve does: one sequence of requests, from one kind of client, to both.

Each request goes through botocore (client-side validation off, no retries); a hook records the
status and the body bytes as they came back, before botocore parses them. Bodies that botocore
would never serialize (not JSON, over 64 KiB, ...) are put in place of the serialized one before
signing, the same for both.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from heartbeat.store import RunnerStore
from heartbeat_local.process import local_endpoint
from heartbeat_testing.fleet import HeartbeatFleet

DOOMED_GROUP = "doomed"  # a worker group with a 2 s threshold: its runner goes stale, the others never do


@dataclass(frozen=True)
class Step:
    """One request (members, or a raw body), or an operator's action between requests."""

    members: dict[str, Any] | None = None
    raw: bytes | None = None
    operator: str | None = None  # "terminate", "reset", "forget" or "stale" (silence past the threshold, swept)
    taskrunner_id: str = "r-1"


SEQUENCE = [
    Step({"taskrunnerId": "r-1", "hostname": "ip-10-0-0-1", "workerGroup": "etl"}),
    Step({"taskrunnerId": "r-1"}),
    Step({"taskrunnerId": ""}),
    Step({"taskrunnerId": "x" * 1025}),
    Step({"taskrunnerId": "bad\u0001id"}),
    Step({"taskrunnerId": "é" * 1024, "hostname": "h" * 1024}),
    Step({"taskrunnerId": "r-2", "workerGroup": ""}),
    Step({"taskrunnerId": 5}),
    Step(raw=b""),
    Step(raw=b"{not json"),
    Step(raw=b"[]"),
    Step(raw=b'{"taskrunnerId":"r-3","extra":1}'),
    Step(raw=json.dumps({"taskrunnerId": "big", "pad": "x" * 70_000}).encode()),
    Step(operator="terminate"),
    Step({"taskrunnerId": "r-1"}),
    Step(operator="reset"),
    Step({"taskrunnerId": "r-1"}),
    Step(operator="forget"),
    Step({"taskrunnerId": "r-1"}),
    Step({"taskrunnerId": "goes-silent", "workerGroup": DOOMED_GROUP}),
    Step(operator="stale", taskrunner_id="goes-silent"),
    Step({"taskrunnerId": "goes-silent"}),
]

Answer = tuple[int, str | None, bytes]


class Recorder:
    """A Data Pipeline client whose answers are kept as they came back: status, __type and body bytes."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.raw: bytes | None = None
        self.answers: list[Answer] = []
        client.meta.events.register("before-sign.datapipeline.ReportTaskRunnerHeartbeat", self._replace_body)
        client.meta.events.register("before-parse.datapipeline.ReportTaskRunnerHeartbeat", self._record)

    def _replace_body(self, request: Any, **_: Any) -> None:
        if self.raw is not None:
            request.data = self.raw

    def _record(self, response_dict: dict[str, Any], **_: Any) -> None:
        body: bytes = response_dict["body"]
        kind = json.loads(body).get("__type") if response_dict["status_code"] >= 300 else None
        self.answers.append((response_dict["status_code"], kind, body))

    def send(self, step: Step) -> None:
        self.raw = step.raw
        members = step.members if step.members is not None else {"taskrunnerId": "replaced"}
        with contextlib.suppress(self.client.exceptions.ClientError):  # recorded before parsing
            self.client.report_task_runner_heartbeat(**members)


def play(recorder: Recorder, operator: Callable[[str, str], None]) -> list[Answer]:
    for step in SEQUENCE:
        if step.operator:
            operator(step.operator, step.taskrunner_id)
        else:
            recorder.send(step)
    return recorder.answers


def client(**endpoint: str) -> Any:
    config = BotoConfig(parameter_validation=False, retries={"total_max_attempts": 1})
    return boto3.client("datapipeline", region_name="us-east-1", config=config, **endpoint)


def test_the_kit_answers_a_sequence_of_requests_exactly_as_make_serve_does(tmp_path: Path) -> None:
    settings = {
        "WORKERS": "1",
        "SWEEP_INTERVAL_SECONDS": "0.3",
        "STALE_AFTER_BY_WORKER_GROUP": json.dumps({DOOMED_GROUP: 2}),
    }
    with local_endpoint(tmp_path, **settings) as running:
        store = RunnerStore(running.table, client=running.dynamodb())

        def serve_operator(action: str, taskrunner_id: str) -> None:
            if action == "stale":
                deadline = time.monotonic() + 60  # a bound on waiting for the sweeper, not an assertion about speed
                while store.get_runner(taskrunner_id).status != "stale":  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "make serve's sweeper never flagged the silent runner"
                    time.sleep(0.1)
            elif action == "terminate":
                store.request_terminate(taskrunner_id, by="test", reason=None, now=time.time())
            elif action == "reset":
                store.reset(taskrunner_id, time.time())
            else:
                store.forget(taskrunner_id)

        served = play(Recorder(client(endpoint_url=running.url)), serve_operator)

    with HeartbeatFleet() as fleet:
        fleet.configure(stale_after_by_worker_group={DOOMED_GROUP: 2})

        def kit_operator(action: str, taskrunner_id: str) -> None:
            if action == "stale":
                fleet.advance(3)
                fleet.sweep()
            else:
                getattr(fleet, action)(taskrunner_id)

        kit = play(Recorder(client()), kit_operator)

    assert kit == served
    assert len(kit) == len([s for s in SEQUENCE if not s.operator])
    # The sequence covers what it means to: success, refusals of each kind, the operator's and the sweeper's terminate.
    assert {kind for _, kind, _ in kit} == {
        None, "InvalidRequestException", "SerializationException", "RequestEntityTooLargeException",
    }  # fmt: skip
    assert [body for _, _, body in kit].count(b'{"terminate":true}') == 2
