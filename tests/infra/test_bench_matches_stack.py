"""The bench fills in the stack's own access-log format: the two must not drift apart."""

from __future__ import annotations

from bench.logbytes import REST_ACCESS_LOG_FORMAT
from tests.infra.conftest import Synth


def test_bench_measures_the_access_log_format_the_stage_writes(private: Synth) -> None:
    [stage] = private.template.find_resources("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["AccessLogSetting"]["Format"] == REST_ACCESS_LOG_FORMAT


def test_the_cost_model_counts_what_the_stack_deploys(private: Synth) -> None:
    from bench import cost
    from infra import storage

    assert cost.assumption("provisioned_utilization") * 100 == storage.TARGET_UTILIZATION_PERCENT
    assert cost.assumption("provisioned_minimum_units") == storage.MIN_CAPACITY
    assert cost.assumption("alarms") == len(private.template.find_resources("AWS::CloudWatch::Alarm"))
    assert cost.assumption("kms_keys") == len(private.template.find_resources("AWS::KMS::Key"))
    assert cost.assumption("dashboards") == len(private.template.find_resources("AWS::CloudWatch::Dashboard"))
