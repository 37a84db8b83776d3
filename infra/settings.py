"""Deployment settings, read from CDK context once and checked, with a clear message per bad value."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_logs as logs

from heartbeat.config import (
    DEFAULT_MASS_STALE_FRACTION,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_STALE_AFTER_SECONDS,
    DEFAULT_SWEEP_INTERVAL_SECONDS,
)
from infra.workers import WORKERS as SWEEP_WORKERS

ACCESS_HELP = (
    "Choose who can reach the endpoint (it is never open by default):\n"
    "  -c endpointType=private -c vpcEndpointIds=vpce-0123456789abcdef0[,vpce-...]   "
    "(private REST API, reachable only through those execute-api VPC endpoints: callers inside a VPC)\n"
    "  -c endpointType=regional -c allowedSourceCidrs=203.0.113.0/24[,198.51.100.7/32]  "
    "(regional REST API, resource policy allows only those PUBLIC source ranges)\n"
    "  -c endpointType=alb -c vpcId=vpc-... -c subnetIds=subnet-...,subnet-... -c certificateArn=arn:aws:acm:... "
    "-c allowedSourceCidrs=10.0.0.0/16 (or -c allowedSecurityGroupIds=sg-...)   "
    "(internal Application Load Balancer in your VPC, HTTPS)\n"
    "An internet-open endpoint needs the explicit -c endpointType=regional -c allowedSourceCidrs=0.0.0.0/0."
)
ENDPOINT_TYPES = ("private", "regional", "alb")
# The handlers' defaults (heartbeat.config), in the units the context takes: one source for both.
DEFAULT_STALE_AFTER_MINUTES = DEFAULT_STALE_AFTER_SECONDS // 60
DEFAULT_RETENTION_DAYS = DEFAULT_RETENTION_SECONDS // 86_400
DEFAULT_SWEEP_INTERVAL_MINUTES = int(DEFAULT_SWEEP_INTERVAL_SECONDS // 60)
AUTH_MODES = ("sigv4", "none")  # -c auth=...: the first is the default (heartbeat.config.AuthMode's values)
BILLING_MODES = ("on-demand", "provisioned")
DEFAULT_STACK_NAME = "TaskRunnerHeartbeat"
# Ranges a regional API never sees as aws:SourceIp: it is the caller's public address (private,
# shared and link-local ranges are translated before they reach AWS; loopback never leaves a host),
# and the key is absent altogether for calls through a VPC endpoint.
NEVER_A_PUBLIC_SOURCE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # private (RFC 1918)
        "100.64.0.0/10",  # shared address space (carrier-grade NAT, RFC 6598)
        "127.0.0.0/8", "::1/128",  # loopback
        "169.254.0.0/16", "fe80::/10",  # link-local
        "fc00::/7",  # IPv6 unique local (private)
    )
)  # fmt: skip
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
# Context keys that only the ALB front door takes.
_ALB_KEYS = (
    "vpcId", "subnetIds", "certificateArn", "allowedSecurityGroupIds", "albPlainHttp", "albAccessLogBucket",
    "albDomainName",
)  # fmt: skip
# A host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_VPC_ENDPOINT_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")
_EVENT_BUS_NAME = re.compile(r"^[A-Za-z0-9._\-/]{1,256}$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
# CloudWatch Logs' allowed retention periods, in days, in the order of logs.RetentionDays.
_RETENTION_DAYS = dict(
    zip(
        (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653),
        [r for r in logs.RetentionDays if r is not logs.RetentionDays.INFINITE],
        strict=True,
    )
)


class SettingsError(ValueError):
    """A context value is missing or bad; the message says which and what to pass."""


@dataclass(frozen=True)
class DeploySettings:
    """Every knob of the stack, with the defaults docs/configuration.md lists."""

    endpoint_type: str
    vpc_endpoint_ids: tuple[str, ...] = ()
    allowed_source_cidrs: tuple[str, ...] = ()
    # The internal ALB front door (endpointType=alb) only.
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    certificate_arn: str | None = None
    allowed_security_group_ids: tuple[str, ...] = ()
    alb_plain_http: bool = False
    alb_access_log_bucket: str | None = None
    alb_domain_name: str | None = None  # the name clients call, which the certificate covers
    stale_after_minutes: int = DEFAULT_STALE_AFTER_MINUTES
    retention_days: int = DEFAULT_RETENTION_DAYS
    sweep_interval_minutes: int = DEFAULT_SWEEP_INTERVAL_MINUTES
    mass_stale_fraction: float = DEFAULT_MASS_STALE_FRACTION
    throttle_rate: int = 50
    throttle_burst: int = 100
    log_retention_days: int = 30
    alarm_topic_arn: str | None = None
    table_encryption: str = "aws-owned"
    retain_data: bool = True
    powertools_layer_arn: str | None = None
    sdk_tracing: bool = False
    event_bus_name: str = "default"
    stale_after_minutes_by_worker_group: tuple[tuple[str, int], ...] = ()
    api_gateway_cloudwatch_role: bool = False
    auth: str = AUTH_MODES[0]
    billing: str = "on-demand"  # the table's capacity mode: "on-demand", or "provisioned" with auto scaling
    trace_sampling: float | None = None  # the share of heartbeats X-Ray traces; None: X-Ray's default rule

    sweep_workers: int = SWEEP_WORKERS  # the sweep's flag writers at most at once (infra/workers.py)
    retire_on_signals: bool = False  # AWS's own signals (EC2, Auto Scaling, ECS) retire gone runners (infra/signals.py)

    @property
    def authenticates(self) -> bool:
        """Heartbeats are signed with keys the stack issues (-c auth=sigv4, the default)."""
        return self.auth == "sigv4"

    @property
    def is_provisioned(self) -> bool:
        return self.billing == "provisioned"

    @property
    def is_private(self) -> bool:
        return self.endpoint_type == "private"

    @property
    def is_alb(self) -> bool:
        return self.endpoint_type == "alb"

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION_DAYS[self.log_retention_days]

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> DeploySettings:
        """Read and check the settings; get is node.try_get_context."""
        access = _access(get)
        settings = cls(
            **access,
            stale_after_minutes=_int(get, "staleAfterMinutes", DEFAULT_STALE_AFTER_MINUTES, 1, 7 * 24 * 60),
            retention_days=_int(get, "retentionDays", DEFAULT_RETENTION_DAYS, 1, 365),
            sweep_interval_minutes=_int(get, "sweepIntervalMinutes", DEFAULT_SWEEP_INTERVAL_MINUTES, 1, 60),
            mass_stale_fraction=_float(get, "massStaleFraction", DEFAULT_MASS_STALE_FRACTION),
            throttle_rate=_int(get, "throttleRate", 50, 1, 10_000),
            throttle_burst=_int(get, "throttleBurst", 100, 1, 5_000),
            log_retention_days=_int(get, "logRetentionDays", 30, 1, 3653),
            alarm_topic_arn=_text(get("alarmTopicArn")),
            table_encryption=_text(get("tableEncryption")) or "aws-owned",
            retain_data=_bool(get, "retainData", True),
            powertools_layer_arn=_text(get("powertoolsLayerArn")),
            sdk_tracing=_bool(get, "sdkTracing", False),
            event_bus_name=_text(get("eventBusName")) or "default",
            stale_after_minutes_by_worker_group=_group_minutes(get("staleAfterMinutesByWorkerGroup")),
            api_gateway_cloudwatch_role=_bool(get, "apiGatewayCloudWatchRole", False),
            auth=_auth(get),
            billing=_text(get("billing")) or "on-demand",
            trace_sampling=_share(get, "traceSampling"),
            # SQS's event source mapping runs 2 to 1,000 at once; each is also a reserved execution.
            sweep_workers=_int(get, "sweepWorkers", SWEEP_WORKERS, 2, 1000),
            retire_on_signals=_bool(get, "retireOnSignals", False),
        )
        settings._check()
        return settings

    def _check(self) -> None:
        if self.retention_days * 24 * 60 <= self.stale_after_minutes:
            raise SettingsError(
                f"retentionDays ({self.retention_days}) must be longer than staleAfterMinutes "
                f"({self.stale_after_minutes}), or runners would expire before they could be flagged"
            )
        if self.sweep_interval_minutes >= self.stale_after_minutes:
            raise SettingsError(
                f"sweepIntervalMinutes ({self.sweep_interval_minutes}) must be shorter than staleAfterMinutes "
                f"({self.stale_after_minutes}), or every sweep would start a new grace period"
            )
        for group, minutes in self.stale_after_minutes_by_worker_group:
            if not self.sweep_interval_minutes < minutes < self.retention_days * 24 * 60:
                raise SettingsError(
                    f"staleAfterMinutesByWorkerGroup: {group!r} must be longer than sweepIntervalMinutes "
                    f"({self.sweep_interval_minutes}) and shorter than retentionDays, got {minutes}"
                )
        if not _EVENT_BUS_NAME.match(self.event_bus_name):
            raise SettingsError(f"eventBusName: {self.event_bus_name!r} is not an event bus name")
        if self.throttle_burst < 1 or self.throttle_rate < 1:
            raise SettingsError("throttleRate and throttleBurst must be positive whole numbers")
        if self.log_retention_days not in _RETENTION_DAYS:
            raise SettingsError(
                f"logRetentionDays must be one of CloudWatch's values {sorted(_RETENTION_DAYS)}, "
                f"got {self.log_retention_days}"
            )
        if self.billing not in BILLING_MODES:
            raise SettingsError(f"billing must be 'on-demand' or 'provisioned', got {self.billing!r}")
        if self.is_alb and self.trace_sampling:
            raise SettingsError(
                f"traceSampling: {self.trace_sampling:g} needs a REST API, whose stage takes X-Ray's sampling "
                "decision; a load balancer takes none, and Lambda's own rate (1 a second, then 5%) cannot be "
                "configured: with endpointType=alb pass -c traceSampling=0 to trace no heartbeat, or leave it out"
            )
        if self.table_encryption not in ("aws-owned", "customer-managed"):
            raise SettingsError(
                f"tableEncryption must be 'aws-owned' or 'customer-managed', got {self.table_encryption!r}"
            )
        if self.alarm_topic_arn is not None and not _TOPIC_ARN.match(self.alarm_topic_arn):
            raise SettingsError(f"alarmTopicArn: {self.alarm_topic_arn!r} is not an SNS topic ARN")
        if self.powertools_layer_arn is not None and not _LAYER_ARN.match(self.powertools_layer_arn):
            raise SettingsError(f"powertoolsLayerArn: {self.powertools_layer_arn!r} is not a Lambda layer version ARN")


def _auth(get: Callable[[str], Any]) -> str:
    """-c auth: sigv4 (the default) or none."""
    auth = (_text(get("auth")) or AUTH_MODES[0]).lower()
    if auth not in AUTH_MODES:
        raise SettingsError(
            f"auth must be 'sigv4' (heartbeats signed with keys the stack issues, the default) or 'none' "
            f"(network-only: anyone who can reach the endpoint can write any runner), got {auth!r}"
        )
    return auth


def _access(get: Callable[[str], Any]) -> dict[str, Any]:
    """Who can reach the endpoint: the front door and its access list, checked per mode."""
    endpoint_type = _text(get("endpointType"))
    vpc_endpoint_ids = _list(get("vpcEndpointIds"))
    cidrs = _list(get("allowedSourceCidrs"))
    if endpoint_type is None:
        raise SettingsError("No access context given. " + ACCESS_HELP)
    if endpoint_type not in ENDPOINT_TYPES:
        raise SettingsError(
            f"endpointType must be 'private', 'regional' or 'alb', got {endpoint_type!r}. " + ACCESS_HELP
        )
    if endpoint_type != "alb":
        given = [key for key in _ALB_KEYS if _text(get(key)) is not None]
        if given:
            raise SettingsError(f"{', '.join(given)}: only -c endpointType=alb takes these. " + ACCESS_HELP)
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError as error:
            raise SettingsError(f"allowedSourceCidrs: {cidr!r} is not a CIDR block ({error})") from None
    if endpoint_type == "private":
        return _private_access(vpc_endpoint_ids, cidrs)
    if vpc_endpoint_ids:
        raise SettingsError(f"endpointType={endpoint_type} takes no vpcEndpointIds. " + ACCESS_HELP)
    if endpoint_type == "regional":
        if not cidrs:
            raise SettingsError("endpointType=regional needs allowedSourceCidrs. " + ACCESS_HELP)
        for cidr in cidrs:
            check_public_source(cidr)
        return {"endpoint_type": endpoint_type, "allowed_source_cidrs": cidrs}
    return _alb_access(get, cidrs)


def _private_access(vpc_endpoint_ids: tuple[str, ...], cidrs: tuple[str, ...]) -> dict[str, Any]:
    if not vpc_endpoint_ids or cidrs:
        raise SettingsError(
            "endpointType=private needs vpcEndpointIds (and takes no allowedSourceCidrs). " + ACCESS_HELP
        )
    for vpce in vpc_endpoint_ids:
        if not _VPC_ENDPOINT_ID.match(vpce):
            raise SettingsError(f"vpcEndpointIds: {vpce!r} is not a VPC endpoint id like vpce-0123456789abcdef0")
    return {"endpoint_type": "private", "vpc_endpoint_ids": vpc_endpoint_ids}


def check_public_source(cidr: str) -> None:
    """Refuse a range that a regional API's aws:SourceIp can never match, pointing to the private mode."""
    network = ipaddress.ip_network(cidr, strict=True)
    for never in NEVER_A_PUBLIC_SOURCE:
        if network.version == never.version and network.subnet_of(never):  # type: ignore[arg-type]
            raise SettingsError(
                f"allowedSourceCidrs: {cidr} is inside {never}, which a regional API never sees as a caller's "
                "address (aws:SourceIp is the public one), so it would deny everyone: for callers inside a VPC "
                "use -c endpointType=private -c vpcEndpointIds=vpce-... (or -c endpointType=alb)"
            )


def _alb_access(get: Callable[[str], Any], cidrs: tuple[str, ...]) -> dict[str, Any]:
    vpc_id = _text(get("vpcId"))
    subnet_ids = _list(get("subnetIds"))
    certificate_arn = _text(get("certificateArn"))
    security_groups = _list(get("allowedSecurityGroupIds"))
    plain_http = _bool(get, "albPlainHttp", False)
    access_log_bucket = _text(get("albAccessLogBucket"))
    domain_name = _host_name(get("albDomainName"))
    if access_log_bucket is not None and not _BUCKET_NAME.match(access_log_bucket):
        raise SettingsError(f"albAccessLogBucket: {access_log_bucket!r} is not an S3 bucket name")
    if vpc_id is None or not _VPC_ID.match(vpc_id):
        raise SettingsError(f"endpointType=alb needs vpcId, a VPC id like vpc-0123456789abcdef0, got {vpc_id!r}")
    if len(subnet_ids) < 2:
        raise SettingsError("endpointType=alb needs subnetIds: at least two subnets, in different Availability Zones")
    for subnet in subnet_ids:
        if not _SUBNET_ID.match(subnet):
            raise SettingsError(f"subnetIds: {subnet!r} is not a subnet id like subnet-0123456789abcdef0")
    if certificate_arn is None and not plain_http:
        raise SettingsError(
            "endpointType=alb needs certificateArn (an ACM certificate ARN for the HTTPS listener); "
            "plain HTTP only with the explicit -c albPlainHttp=true"
        )
    if certificate_arn is not None and not _CERTIFICATE_ARN.match(certificate_arn):
        raise SettingsError(f"certificateArn: {certificate_arn!r} is not an ACM certificate ARN")
    if not cidrs and not security_groups:
        raise SettingsError(
            "endpointType=alb needs allowedSourceCidrs and/or allowedSecurityGroupIds: who may connect. " + ACCESS_HELP
        )
    for group in security_groups:
        if not _SECURITY_GROUP_ID.match(group):
            raise SettingsError(
                f"allowedSecurityGroupIds: {group!r} is not a security group id like sg-0123456789abcdef0"
            )
    for cidr in cidrs:
        if ipaddress.ip_network(cidr).prefixlen == 0:
            raise SettingsError(
                f"allowedSourceCidrs: {cidr} would let anything that can route to the VPC connect; "
                "list the networks of your task runners (e.g. the VPC's own CIDR) instead"
            )
    return {
        "endpoint_type": "alb",
        "allowed_source_cidrs": cidrs,
        "vpc_id": vpc_id,
        "subnet_ids": subnet_ids,
        "certificate_arn": certificate_arn,
        "allowed_security_group_ids": security_groups,
        "alb_plain_http": plain_http,
        "alb_access_log_bucket": access_log_bucket,
        "alb_domain_name": domain_name,
    }


def _host_name(value: Any) -> str | None:
    """albDomainName: the name the runners call, which the certificate covers."""
    name = (_text(value) or "").lower().rstrip(".") or None
    if name is not None and not _HOST_NAME.match(name):
        raise SettingsError(
            f"albDomainName: {name!r} is not a host name like heartbeat.example.internal "
            "(the name your runners call, which the certificate covers)"
        )
    return name


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _list(value: Any) -> tuple[str, ...]:
    """A list from JSON context (a list) or from the command line (comma-separated)."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _int(get: Callable[[str], Any], name: str, default: int, low: int, high: int) -> int:
    raw = get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(get: Callable[[str], Any], name: str, default: float) -> float:
    raw = get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(str(raw))
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not 0 < value <= 1:
        raise SettingsError(f"{name} must be greater than 0 and at most 1 (1 turns the guard off), got {raw!r}")
    return value


def _share(get: Callable[[str], Any], name: str) -> float | None:
    """A fraction from 0 to 1, or None when not given."""
    raw = get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(str(raw))
    except ValueError:
        raise SettingsError(f"{name} must be a number from 0 to 1, got {raw!r}") from None
    if not 0 <= value <= 1:
        raise SettingsError(f"{name} must be a number from 0 to 1, got {raw!r}")
    return value


def _bool(get: Callable[[str], Any], name: str, default: bool) -> bool:
    raw = get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in ("true", "1", "yes"):
        return True
    if str(raw).lower() in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _group_minutes(value: Any) -> tuple[tuple[str, int], ...]:
    """workerGroup -> minutes, from a JSON object (cdk.json) or a JSON string (-c on the command line)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise SettingsError("staleAfterMinutesByWorkerGroup must be a JSON object, e.g. '{\"fast-etl\": 10}'")
    groups = []
    for group, minutes in value.items():
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise SettingsError(f"staleAfterMinutesByWorkerGroup: {group!r} must be a whole number of minutes")
        groups.append((str(group), minutes))
    return tuple(sorted(groups))
