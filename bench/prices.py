"""AWS's published on-demand prices, US East (N. Virginia): the one price table the cost model uses.

Free tiers are left out (a bill past the first year has none of them). Change a price here and
run `make cost` to regenerate docs/cost.md. Each price names its page; SOURCES says which were
read again in AWS's own pages for this table, and which are carried from the table's first version.
"""

from __future__ import annotations

AS_OF = "November 2026"
REGION = "us-east-1"
HOURS_A_MONTH = 730

# API Gateway REST API, per million requests, by monthly tier: (requests in the tier, $ per million).
# aws.amazon.com/api-gateway/pricing/
API_GATEWAY_REST_TIERS: tuple[tuple[float, float], ...] = (
    (333e6, 3.50),
    (667e6, 2.80),
    (19e9, 2.38),
    (float("inf"), 1.51),
)
# Interface VPC endpoint (PrivateLink), which a private REST API needs: per AZ-hour, and per GB processed
# (first PB a month). aws.amazon.com/privatelink/pricing/
VPC_ENDPOINT_AZ_HOUR = 0.01
VPC_ENDPOINT_GB = 0.01
# Application Load Balancer: per hour, and per LCU-hour. aws.amazon.com/elasticloadbalancing/pricing/
ALB_HOUR = 0.0225
ALB_LCU_HOUR = 0.008
# One LCU is the largest of: 25 new connections a second, 3,000 active connections a minute,
# 0.4 GB an hour processed for Lambda targets (1 GB for instances and IPs), 1,000 rule evaluations a second.
LCU_NEW_CONNECTIONS_PER_SECOND = 25
LCU_ACTIVE_CONNECTIONS = 3000
LCU_LAMBDA_GB_PER_HOUR = 0.4
# Data between a network interface (an instance's, a load balancer node's, an endpoint's) and one in another
# Availability Zone of the region: per GB, charged in each direction, so twice per GB that crosses.
# aws.amazon.com/ec2/pricing/on-demand/ (Data Transfer within the same AWS Region)
INTER_AZ_GB_EACH_WAY = 0.01
# Data out of AWS to the internet, first 10 TB a month (a regional API's answers to runners outside AWS).
# aws.amazon.com/ec2/pricing/on-demand/
INTERNET_OUT_GB = 0.09
# Lambda, arm64: per million requests, per GB-second (first tier). aws.amazon.com/lambda/pricing/
LAMBDA_REQUEST_MILLION = 0.20
LAMBDA_GB_SECOND = 0.0000133334
# DynamoDB on-demand: per million write and read request units; storage and continuous backups per GB-month.
# aws.amazon.com/dynamodb/pricing/on-demand/
DYNAMODB_WRITE_MILLION = 0.625
DYNAMODB_READ_MILLION = 0.125
DYNAMODB_STORAGE_GB_MONTH = 0.25
DYNAMODB_PITR_GB_MONTH = 0.20
DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # DynamoDB bills 100 bytes of indexing overhead per item
# DynamoDB provisioned capacity: per write and read capacity unit-hour. aws.amazon.com/dynamodb/pricing/provisioned/
DYNAMODB_WCU_HOUR = 0.00065
DYNAMODB_RCU_HOUR = 0.00013
# KMS: per customer-managed key a month (requests are a few thousand a month here, under a cent).
# aws.amazon.com/kms/pricing/
KMS_KEY_MONTH = 1.00
# CloudWatch: log ingestion per GB; custom metrics per metric-month (first 10,000); standard alarms;
# dashboards per month. aws.amazon.com/cloudwatch/pricing/
LOGS_INGESTED_GB = 0.50
CUSTOM_METRIC_MONTH = 0.30
ALARM_MONTH = 0.10
DASHBOARD_MONTH = 3.00
# X-Ray: per million traces recorded. aws.amazon.com/xray/pricing/
XRAY_TRACE_MILLION = 5.00
# EventBridge: per million custom events put (each 64 KB chunk of an entry counts). aws.amazon.com/eventbridge/pricing/
EVENTBRIDGE_EVENT_MILLION = 1.00
# SQS: per million standard-queue requests (each 64 KB chunk counts). aws.amazon.com/sqs/pricing/
SQS_REQUEST_MILLION = 0.40

# Which prices were read again in a stored copy of AWS's page for this table (November 2026), and which
# are carried as the table had them: AWS's pricing pages fill their figures in by script, so most stored
# copies hold the words and not the numbers.
SOURCES = {
    "VPC endpoint GB ($0.01, first PB)": "read again (AWS PrivateLink pricing page)",
    "inter-AZ ($0.01 a GB each direction)": "AWS's EC2 on-demand pricing page, quoted in public answers; "
    "the stored copy has no figure",
    "X-Ray default rule (1 a second, then 5%)": "read again (Lambda developer guide, X-Ray)",
    "DynamoDB provisioned ($0.00065 a WCU-hour, $0.00013 an RCU-hour), KMS ($1 a key-month)": "new in this "
    "table; the stored copies of their pages hold no figures: check them on the pages named",
    "every other price": f"carried from the table's first version ({AS_OF}); check them on the pages named",
}
