"""AWS's published on-demand prices, US East (N. Virginia): the one price table the cost model uses.

Free tiers are left out (a bill past the first year has none of them). Change a price here and
run `make cost` to regenerate docs/cost.md.
"""

from __future__ import annotations

AS_OF = "November 2026"
REGION = "us-east-1"
HOURS_A_MONTH = 730

# API Gateway REST API, per million requests, by monthly tier: (requests in the tier, $ per million).
API_GATEWAY_REST_TIERS: tuple[tuple[float, float], ...] = (
    (333e6, 3.50),
    (667e6, 2.80),
    (19e9, 2.38),
    (float("inf"), 1.51),
)
# Interface VPC endpoint (PrivateLink), which a private REST API needs: per AZ-hour, and per GB processed.
VPC_ENDPOINT_AZ_HOUR = 0.01
VPC_ENDPOINT_GB = 0.01
# Application Load Balancer: per hour, and per LCU-hour.
ALB_HOUR = 0.0225
ALB_LCU_HOUR = 0.008
# One LCU is the largest of: 25 new connections a second, 3,000 active connections a minute,
# 0.4 GB an hour processed for Lambda targets (1 GB for instances and IPs), 1,000 rule evaluations a second.
LCU_NEW_CONNECTIONS_PER_SECOND = 25
LCU_ACTIVE_CONNECTIONS = 3000
LCU_LAMBDA_GB_PER_HOUR = 0.4
# Lambda, arm64: per million requests, per GB-second (first tier).
LAMBDA_REQUEST_MILLION = 0.20
LAMBDA_GB_SECOND = 0.0000133334
# DynamoDB on-demand: per million write and read request units; storage and continuous backups per GB-month.
DYNAMODB_WRITE_MILLION = 0.625
DYNAMODB_READ_MILLION = 0.125
DYNAMODB_STORAGE_GB_MONTH = 0.25
DYNAMODB_PITR_GB_MONTH = 0.20
DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # DynamoDB bills 100 bytes of indexing overhead per item
# CloudWatch: log ingestion per GB; custom metrics per metric-month (first 10,000); standard alarms;
# dashboards per month.
LOGS_INGESTED_GB = 0.50
CUSTOM_METRIC_MONTH = 0.30
ALARM_MONTH = 0.10
DASHBOARD_MONTH = 3.00
# X-Ray: per million traces recorded.
XRAY_TRACE_MILLION = 5.00
