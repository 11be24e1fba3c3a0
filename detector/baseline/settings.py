"""`baseline:` in the configuration: which artifact runs, and how its models see events.

```yaml
baseline:
  path: models/default          # the directory `trailguard baseline train` wrote
  models: []                    # which of its models run; empty: all of them
  drain_every: 10000            # replay: buffered work is scored this often (and at the end)
  habit_calls: 5                # severity.habitual_step_down: "habitual" is this many calls
  # Read by the models themselves (each names its keys), e.g. the action model:
  half_life_days: 30            # online updates: what was learned weighs half after this
  default_time_zone: UTC        # hour-of-day features in the account's local time ...
  time_zones: {"111122223333": Europe/Berlin}     # ... per account
  networks: {office: ["203.0.113.0/24"]}          # source networks by name
```

The section is one mapping shared by this module and the models: the keys here are
validated with `parse_section`, each model validates its own (`from_settings`), and a key
that neither this module nor any registered model knows is an error naming it, with the
closest known key suggested. The models get the section as it was written
(`TrainableModel.runtime(policy, settings)`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from detector.baseline.protocol import TrainableModel
from detector.config import AT_LEAST_ONE, POSITIVE, Check, Settings, parse_section
from detector.errors import ConfigError
from detector.registry import Registry


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineSettings:
    # The artifact directory; none: no baselines run.
    path: Path | None = None
    # Registry names of the artifact's models to run (in the artifact's order, so the
    # session model sees the action model's findings); empty: every model it holds.
    models: Annotated[tuple[str, ...], Check(unique=True)] = ()
    # `replay`: buffered baseline work (session scoring) is drained this often, in events,
    # and at the end. The service drains at the end of every batch.
    drain_every: Annotated[int, AT_LEAST_ONE] = 10_000
    # `severity.habitual_step_down`: an action is habitual for a role or user that called
    # it at least this often (decayed like the counts, so an old habit fades).
    habit_calls: Annotated[float, POSITIVE] = 5.0


OWN_KEYS = frozenset(f for f in BaselineSettings.__dataclass_fields__)


def model_keys(models: Registry[type[TrainableModel]]) -> frozenset[str]:
    """The `baseline:` keys the registered models read: a class's `settings_keys`, or its
    module's SETTINGS_KEYS."""
    keys: set[str] = set()
    for name in models:
        cls = models.get(name)
        declared: Any = getattr(cls, "settings_keys", None)
        if declared is None:
            declared = getattr(importlib.import_module(cls.__module__), "SETTINGS_KEYS", ())
        keys.update(str(key) for key in declared)
    return frozenset(keys)


def baseline_settings(
    settings: Settings,
    *,
    path: Path | None = None,
    models: Registry[type[TrainableModel]] | None = None,
) -> BaselineSettings:
    """The validated `baseline:` section; `path` (replay's --baseline) overrides its path.

    Every registered model checks its own keys here too, so `config check` and start-up
    fail on a bad time zone before anything is loaded.
    """
    from detector.baseline.registry import load_models

    registry = models if models is not None else load_models()
    section = dict(settings.baseline)
    known = OWN_KEYS | model_keys(registry)
    for key in section:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean 'baseline.{close[0]}'?)" if close else ""
            raise ConfigError(f"{settings.source}: unknown key 'baseline.{key}'{hint}")
    own = {k: v for k, v in section.items() if k in OWN_KEYS}
    parsed = parse_section(BaselineSettings, own, source=settings.source, key="baseline")
    for name in parsed.models:
        if name not in registry:
            listed = ", ".join(sorted(registry)) or "none"
            raise ConfigError(
                f"{settings.source}: 'baseline.models': unknown model {name!r} (known: {listed})"
            )
    for name in registry:
        registry.get(name).from_settings(section, source=settings.source)
    if path is not None:
        return BaselineSettings(
            path=path,
            models=parsed.models,
            drain_every=parsed.drain_every,
            habit_calls=parsed.habit_calls,
        )
    return parsed


def model_settings(settings: Settings) -> Mapping[str, Any]:
    """What `TrainableModel.runtime` receives: the section as written (models read their
    own keys; `baseline_settings` has checked them)."""
    return dict(settings.baseline)
