#!/usr/bin/env python3
"""The CDK app: settings from context, one stack, cdk-nag's AWS Solutions checks."""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import DEFAULT_STACK_NAME, DeploySettings, SettingsError
from infra.stack import HeartbeatStack


def build_app(app: cdk.App) -> HeartbeatStack:
    """Add the stack, configured from the app's context, and the cdk-nag checks."""
    settings = DeploySettings.from_context(app.node.try_get_context)
    stack_name = app.node.try_get_context("stackName") or DEFAULT_STACK_NAME
    stack = HeartbeatStack(
        app,
        stack_name,
        settings=settings,
        description="Drop-in AWS Data Pipeline ReportTaskRunnerHeartbeat endpoint (API Gateway, Lambda, DynamoDB)",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def main() -> None:
    app = cdk.App()
    try:
        build_app(app)
    except SettingsError as error:
        print(f"Cannot synthesize: {error}", file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
