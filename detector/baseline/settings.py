"""`baseline:` in the configuration: which artifact runs, and how it sees events.

```yaml
baseline:
  path: models/default          # the directory `trailguard baseline train` wrote
  models: []                    # which of its models run; empty: all of them
  learn: true                   # online updates from the events no one flagged
  half_life_days: 14            # what was learned weighs half after this much event time
  default_time_zone: UTC        # hour-of-day features in the account's local time ...
  time_zones: {"111122223333": Europe/Berlin}     # ... per account
  networks: {office: ["203.0.113.0/24"]}          # source networks by name
  drain_every: 10000            # replay: buffered work is scored this often (and at the end)
```

Validated with `parse_section` like every other section, errors naming the key as written
(`baseline.time_zones.111122223333`). The models read what concerns them through
`runtime_settings`, a plain mapping, so the core never imports this module.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from detector.config import AT_LEAST_ONE, POSITIVE, Check, Settings, parse_section
from detector.errors import ConfigError

ACCOUNT_ID = re.compile(r"^\d{12}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineSettings:
    # The artifact directory; none: no baselines run.
    path: Path | None = None
    # Registry names of the artifact's models to run; empty: every model it holds.
    models: Annotated[tuple[str, ...], Check(unique=True)] = ()
    # Keep learning from the events no finding flagged (saved with the shard state).
    learn: bool = True
    # The weight of what was learned halves every this many days of event time.
    half_life_days: Annotated[float, POSITIVE] = 14.0
    # Hour-of-day features in the account's time zone (IANA names), else the default.
    default_time_zone: str = "UTC"
    time_zones: Mapping[str, Any] = field(default_factory=dict)
    # Source networks by name, each a list of CIDRs; other addresses are AWS-internal
    # (a service's name instead of an IP) or public.
    networks: Mapping[str, Any] = field(default_factory=dict)
    # `replay`: buffered baseline work (session scoring) is drained this often, in events,
    # and at the end. The service drains at the end of every batch.
    drain_every: Annotated[int, AT_LEAST_ONE] = 10_000


def baseline_settings(settings: Settings, *, path: Path | None = None) -> BaselineSettings:
    """The validated `baseline:` section; `path` (replay's --baseline) overrides its path."""
    data = dict(settings.baseline)
    parsed = parse_section(BaselineSettings, data, source=settings.source, key="baseline")
    where = settings.source
    _zone(parsed.default_time_zone, where, "baseline.default_time_zone")
    for account, zone in parsed.time_zones.items():
        key = f"baseline.time_zones.{account}"
        if not isinstance(account, str) or not ACCOUNT_ID.match(account):
            raise ConfigError(f"{where}: '{key}': an account id is 12 digits (quote it in YAML)")
        if not isinstance(zone, str):
            raise ConfigError(f"{where}: '{key}' must be a time zone name, got {zone!r}")
        _zone(zone, where, key)
    networks: dict[str, tuple[str, ...]] = {}
    for name, cidrs in parsed.networks.items():
        key = f"baseline.networks.{name}"
        if not isinstance(cidrs, list) or not cidrs:
            raise ConfigError(f"{where}: '{key}' must be a non-empty list of CIDRs")
        for index, cidr in enumerate(cidrs):
            try:
                ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                raise ConfigError(
                    f"{where}: '{key}[{index}]' must be a CIDR (203.0.113.0/24), got {cidr!r}"
                ) from None
        networks[str(name)] = tuple(str(c) for c in cidrs)
    return dataclasses.replace(
        parsed, path=path or parsed.path, time_zones=dict(parsed.time_zones), networks=networks
    )


def runtime_settings(settings: BaselineSettings) -> dict[str, Any]:
    """What `TrainableModel.runtime` receives: the section's values under its own key names."""
    return {
        "learn": settings.learn,
        "half_life_days": settings.half_life_days,
        "default_time_zone": settings.default_time_zone,
        "time_zones": dict(settings.time_zones),
        "networks": {name: list(cidrs) for name, cidrs in settings.networks.items()},
    }


def _zone(name: str, where: str, key: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: '{key}': unknown time zone {name!r} (an IANA name: UTC, Europe/Berlin)"
        ) from None
