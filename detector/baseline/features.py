"""What a baseline counts about one event: its action, service, resource type, region, hour
of day in the account's time zone, source network, error code and client (the calling
tool's family, from the user agent).

Pure: the values come from the `EventContext` the pipeline built and from `FeatureConfig`
(time zones and named networks, validated once). Every value is a short string, so the
models can count them; a feature that does not apply has the value "none".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from detector.core.actions import service_prefix
from detector.core.policy import EventContext
from detector.errors import ConfigError

FEATURES: tuple[str, ...] = (
    "action",
    "service",
    "resource_type",
    "region",
    "hour",
    "network",
    "error",
    "client",
)
NONE = "none"
AWS_INTERNAL = "aws-internal"
PRIVATE = "private"
PUBLIC = "public"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Addresses that only reach AWS from inside a network (VPC endpoints, peered networks):
# RFC 1918, shared address space, loopback, link-local and unique local IPv6. Python's
# `is_private` would also count the documentation ranges, which are public addresses here.
PRIVATE_NETWORKS: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
        "169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureConfig:
    """Time zones per account and named networks: the settings features depend on.

    default_time_zone  IANA name used for accounts not in `time_zones`
    time_zones         account id -> IANA time zone, for the hour-of-day feature
    networks           name -> CIDRs; a source address in one is reported by that name
                       (first match in the order given). CloudTrail carries no country: a
                       network named after a country (from a GeoIP export) gives one.
    """

    default_time_zone: str = "UTC"
    time_zones: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    networks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "default_time_zone": self.default_time_zone,
            "time_zones": dict(self.time_zones),
            "networks": {name: list(cidrs) for name, cidrs in self.networks.items()},
        }


def parse_feature_config(data: Mapping[str, Any], *, source: str, key: str) -> FeatureConfig:
    """A FeatureConfig from plain data (a config section or a saved model), checked: an
    unknown time zone or an invalid CIDR is a ConfigError naming the key as written."""
    default = data.get("default_time_zone", "UTC")
    _zone(default, source, f"{key}.default_time_zone")
    zones_raw = data.get("time_zones") or {}
    if not isinstance(zones_raw, Mapping):
        raise ConfigError(f"{source}: '{key}.time_zones' must be a mapping of account to zone")
    zones: dict[str, str] = {}
    for account, zone in zones_raw.items():
        _zone(zone, source, f"{key}.time_zones.{account}")
        zones[str(account)] = zone
    networks_raw = data.get("networks") or {}
    if not isinstance(networks_raw, Mapping):
        raise ConfigError(f"{source}: '{key}.networks' must be a mapping of name to CIDRs")
    networks: dict[str, tuple[str, ...]] = {}
    for name, cidrs in networks_raw.items():
        where = f"{key}.networks.{name}"
        if isinstance(cidrs, str):
            cidrs = [cidrs]
        if not isinstance(cidrs, list | tuple) or not cidrs:
            raise ConfigError(f"{source}: '{where}' must be a CIDR or a non-empty list of them")
        for index, cidr in enumerate(cidrs):
            try:
                ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                raise ConfigError(f"{source}: '{where}[{index}]' is not a CIDR: {cidr!r}") from None
        networks[str(name)] = tuple(str(c) for c in cidrs)
    return FeatureConfig(
        default_time_zone=default,
        time_zones=MappingProxyType(zones),
        networks=MappingProxyType(networks),
    )


def _zone(value: Any, source: str, key: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{source}: '{key}' must be an IANA time zone name, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{source}: '{key}': unknown time zone {value!r}") from None


class FeatureExtractor:
    """Turns an EventContext into one value per feature of FEATURES, in that order."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._default_zone = ZoneInfo(config.default_time_zone)
        self._zones = {account: ZoneInfo(name) for account, name in config.time_zones.items()}
        self._networks: tuple[tuple[str, IpNetwork], ...] = tuple(
            (name, ipaddress.ip_network(cidr, strict=False))
            for name, cidrs in config.networks.items()
            for cidr in cidrs
        )
        self._network_of = lru_cache(maxsize=65536)(self._classify_address)

    def values(self, ctx: EventContext) -> tuple[str, ...]:
        event = ctx.event
        service = service_prefix(event.event_source)
        action = ctx.actions[0] if ctx.actions else f"{service}:{event.event_name}"
        account = event.account_id or ""
        zone = self._zones.get(account, self._default_zone)
        hour = event.event_time.astimezone(zone).hour
        return (
            action.lower(),
            service,
            resource_type(ctx),
            event.aws_region or NONE,
            f"{hour:02d}",
            self.network(event.source_ip, event.actor.invoked_by),
            event.error_code or NONE,
            client(event.user_agent, event.actor.invoked_by),
        )

    def network(self, source_ip: str | None, invoked_by: str | None) -> str:
        """aws-internal, a configured network's name, private, or public."""
        if invoked_by or not source_ip:
            return AWS_INTERNAL
        return self._network_of(source_ip)

    def hour_zone(self, account: str | None) -> str:
        """The time zone name hours are counted in for `account`, for evidence text."""
        return self.config.time_zones.get(account or "", self.config.default_time_zone)

    def _classify_address(self, source_ip: str) -> str:
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            # "AWS Internal", or a service's host name (cloudformation.amazonaws.com) when a
            # service calls on the principal's behalf.
            return AWS_INTERNAL
        for name, network in self._networks:
            if address.version == network.version and address in network:
                return name
        private = any(
            address.version == network.version and address in network
            for network in PRIVATE_NETWORKS
        )
        return PRIVATE if private else PUBLIC


def resource_type(ctx: EventContext) -> str:
    """ "service:type" of the resources the event names (from their ARNs), else of the
    catalogue's resource types for the action, else "none". Of several, the type the
    action's name names ("getobject" touches a bucket and an object: "s3:object")."""
    action = ctx.actions[0].lower().partition(":")[2] if ctx.actions else ""
    found = [t for t in map(arn_resource_type, ctx.resources) if t is not None]
    if found:
        kinds = tuple(t.partition(":")[2] for t in found)
        return found[kinds.index(_named_type(action, kinds))]
    for classification in ctx.classifications:
        types = classification.entry.resource_types
        if types:
            service, _, name = classification.action.lower().partition(":")
            return f"{service}:{_named_type(name, types).lower()}"
    return NONE


def _named_type(action_name: str, types: tuple[str, ...]) -> str:
    """Of the types an action can touch (listed alphabetically by IAM), the one its name
    names ("runinstances" -> "instance"), else the first."""
    named = [t for t in types if t.replace("-", "").lower() in action_name]
    return max(named, key=len) if named else types[0]


@lru_cache(maxsize=65536)
def arn_resource_type(arn: str) -> str | None:
    """ "arn:aws:iam::1:role/x" -> "iam:role"; S3 buckets and objects are "s3:bucket" and
    "s3:object" (their ARNs carry no type); names are never returned (too many values)."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    service, resource = parts[2].lower(), parts[5]
    if service == "s3":
        return "s3:object" if "/" in resource else "s3:bucket"
    for separator in ("/", ":"):
        if separator in resource:
            return f"{service}:{resource.split(separator, 1)[0].lower()}"
    # A bare name (an SNS topic, an SQS queue): the service's one resource type.
    return f"{service}:resource"


# Client families, first match wins. Terraform comes before the SDK it embeds and before the
# Stratus Red Team tag it carries when Stratus drives it; the console before "aws-internal/",
# which the console's back ends also send.
_CLIENT_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (family, re.compile(pattern, re.IGNORECASE))
    for family, pattern in (
        ("terraform", r"\bterraform\b|\bHashiCorp/"),
        ("console", r"console|^Mozilla/|signin\.amazonaws\.com"),
        ("stratus-red-team", r"\bstratus-red-team\b"),
        ("amazon-ssm-agent", r"\bamazon-ssm-agent\b"),
        ("aws-internal", r"^AWS Internal$|\baws-internal/|^[a-z0-9.-]+\.amazonaws\.com$"),
        ("aws-cli", r"\baws-cli/"),
        ("Boto3", r"\bBoto3/"),
        ("Botocore", r"\bBotocore/"),
    )
)
_SDK = re.compile(r"\baws-sdk-([a-z]+)", re.IGNORECASE)
# An unknown agent's product name is its first word, without an instance's _<uuid> or hex id.
_WORD_END = re.compile(r"[/ ;(,]")
_INSTANCE_ID = re.compile(r"[_-]?[0-9a-f][0-9a-f-]{7,}$", re.IGNORECASE)
_MAX_CLIENT = 40


@lru_cache(maxsize=4096)
def client(user_agent: str, invoked_by: str | None = None) -> str:
    """The calling tool's family: "terraform", "console", "aws-cli", "Boto3", "aws-sdk-go",
    "stratus-red-team", "aws-internal" (a service calling on the principal's behalf)...

    Versions, operating systems, UUIDs and hashes are dropped so that an upgrade or a new
    run of the same tool does not make a new value; an unknown agent is its product name
    (the first word before a "/", "_<id>" or space), lower-cased; no user agent is "none"
    unless a service invoked the call.
    """
    text = user_agent.strip().strip("[]").strip()
    if not text:
        return AWS_INTERNAL if invoked_by else NONE
    for family, pattern in _CLIENT_FAMILIES:
        if pattern.search(text):
            return family
    sdk = _SDK.search(text)
    if sdk:
        return f"aws-sdk-{sdk.group(1).lower()}"
    product = _INSTANCE_ID.sub("", _WORD_END.split(text, maxsplit=1)[0]).lower()
    if not product or not product[0].isalpha():
        return "other"
    return product[:_MAX_CLIENT]
