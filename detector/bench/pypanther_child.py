"""Runs pypanther's AWS CloudTrail rules over a JSON Lines file; prints one JSON object.

    PYTHON pypanther_child.py EVENTS.jsonl

Started by `trailguard bench peer` under an interpreter that has pypanther, which need not
have TrailGuard or its dependencies: this file uses only the standard library and
pypanther. Each record becomes a `PantherEvent` with pypanther's CloudTrail data model, as
Panther's engine builds it, and every rule runs on it with `Rule.run` in batch mode.

Alerts are counted as Panther groups them: one per rule and dedup string once a rule's
matches reach its threshold (the whole file falls within the default one-hour dedup
period). The six rules that keep state between events do it in DynamoDB through
`panther_detection_helpers.caching`; here those helpers keep it in memory, which costs the
peer less than DynamoDB would, and any other AWS call is refused without touching the
network.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

# The state-keeping helpers the CloudTrail rules import, kept in memory for the run.
_SETS: dict[str, set[str]] = {}


def _get_string_set(key: str, force_ttl_check: bool = False) -> set[str]:
    return set(_SETS.get(key, set()))


def _put_string_set(key: str, val: Iterable[str], epoch_seconds: int | None = None) -> None:
    _SETS[key] = set(val)


def _add_to_string_set(
    key: str, val: str | Iterable[str], epoch_seconds: int | None = None
) -> set[str]:
    items = {val} if isinstance(val, str) else set(val)
    _SETS.setdefault(key, set()).update(items)
    return set(_SETS[key])


def _check_account_age(key: Any) -> bool:
    return isinstance(key, str) and key != "" and bool(_SETS.get(key))


IN_MEMORY = {
    "get_string_set": _get_string_set,
    "put_string_set": _put_string_set,
    "add_to_string_set": _add_to_string_set,
    "check_account_age": _check_account_age,
}


def _refuse(*_: Any, **__: Any) -> Any:
    raise RuntimeError("the benchmark makes no AWS calls")


def _isolate() -> None:
    """Swap the helpers for in-memory ones wherever the rules imported them; refuse boto3."""
    import boto3  # type: ignore[import-untyped, unused-ignore]
    import boto3.session  # type: ignore[import-untyped, unused-ignore]
    from panther_detection_helpers import caching

    boto3.client = boto3.resource = _refuse
    boto3.session.Session.client = boto3.session.Session.resource = _refuse
    originals = {getattr(caching, name): fake for name, fake in IN_MEMORY.items()}
    for name, fake in IN_MEMORY.items():
        setattr(caching, name, fake)
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith("pypanther."):
            continue
        for attribute, value in list(vars(module).items()):
            if callable(value) and value in originals:
                setattr(module, attribute, originals[value])


def main(path: str) -> dict[str, Any]:
    began = time.perf_counter()
    from panther_core import PantherEvent
    from pypanther import LogType, get_panther_rules
    from pypanther.cache import data_model_cache

    classes = get_panther_rules(log_types=[LogType.AWS_CLOUDTRAIL])
    rules = [cls() for cls in classes]
    _isolate()
    model = data_model_cache().data_model_of_logtype(LogType.AWS_CLOUDTRAIL)
    loaded = time.perf_counter() - began

    matches: Counter[tuple[str, str]] = Counter()
    errors: Counter[str] = Counter()
    events = 0
    started = time.perf_counter()
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            event = PantherEvent(json.loads(line), model)
            events += 1
            for rule in rules:
                result = rule.run(event, {}, {}, True)
                if result.detection_exception is not None:
                    errors[rule.id] += 1
                if result.trigger_alert:
                    matches[(rule.id, str(result.dedup_output))] += 1
    elapsed = time.perf_counter() - started
    thresholds = {rule.id: int(rule.threshold or 1) for rule in rules}
    alerts = sum(1 for (rule_id, _), n in matches.items() if n >= thresholds[rule_id])
    version = "unknown"
    try:
        from importlib.metadata import version as package_version

        version = package_version("pypanther")
    except Exception:  # noqa: BLE001 - the figure stands without the version
        version = "unknown"
    return {
        "version": version,
        "rules": len(rules),
        "enabled": sum(1 for rule in rules if rule.enabled),
        "events": events,
        "seconds": elapsed,
        "load_seconds": loaded,
        "matches": sum(matches.values()),
        "alerts": alerts,
        "rules_alerting": len({rule_id for rule_id, _ in matches}),
        "rule_errors": sum(errors.values()),
        "rules_erring": len(errors),
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(sys.argv[1])) + "\n")
