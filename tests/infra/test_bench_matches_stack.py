"""The bench fills in the stack's own access-log format: the two must not drift apart."""

from __future__ import annotations

from bench.logbytes import REST_ACCESS_LOG_FORMAT
from tests.infra.conftest import Synth


def test_bench_measures_the_access_log_format_the_stage_writes(private: Synth) -> None:
    [stage] = private.template.find_resources("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["AccessLogSetting"]["Format"] == REST_ACCESS_LOG_FORMAT
