"""Which baseline kinds fire when an attack technique runs inside a benign session.

The baselines (every registered model) are fitted on the benign part of the background
capture (the Invictus capture without its own Stratus run). Then, one technique at a time,
the Stratus Red Team detonation events of that technique are re-stamped as calls of one
benign host session (by default the busiest console/CLI session: a person's access key),
one minute after the host's last call and with their own relative timing, in the host's
region (the detonation logs' region names are pseudonyms), as stolen credentials would be
used; background and technique are replayed through the pipeline with
the baselines' run-time views and drained. For each technique: how many of its events raised
`novel-action`, and whether the host session raised `anomalous-session` and
`suspicious-sequence` (the background alone raises none of them for the host).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from detector.baseline.evaluate_inputs import run_order
from detector.baseline.protocol import TrainableModel, TrainingEvent
from detector.baseline.registry import load_models
from detector.baseline.train import judge_records, make_models
from detector.bench_detection import ATTACKS, BACKGROUND, BENIGN_CLASSES, _time
from detector.config import Settings
from detector.core.findings import Finding
from detector.core.parse import parse_record
from detector.errors import ConfigError
from detector.wiring import build_pipeline, severity_policy

HOST_CLASS = "other_console_cli_sdk"
KINDS = ("novel-action", "anomalous-session", "suspicious-sequence")


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectedResult:
    technique: str
    events: int
    novel: int  # injected events that raised novel-action
    anomalous: bool
    sequence: bool

    def to_record(self) -> dict[str, Any]:
        return {
            "technique": self.technique,
            "events": self.events,
            "novel_action_events": self.novel,
            "anomalous_session": self.anomalous,
            "suspicious_sequence": self.sequence,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectionReport:
    host: str  # the host session's principal and access key
    background_events: int
    control: Counter[str]  # baseline findings on the host session without any injection
    techniques: list[InjectedResult]


def injection_report(settings: Settings | None = None) -> InjectionReport:
    settings = settings or Settings()
    background = [
        r for r, label in _labelled(BACKGROUND) if label.get("activity_class") in BENIGN_CLASSES
    ]
    attacks = [(str(label.get("technique")), r) for r, label in _labelled(ATTACKS)]
    host = _host(_labelled(BACKGROUND))
    names = run_order(load_models())
    models = {
        m.name: m.fit(_judged(background, settings))
        for m in make_models(names, settings.baseline, source=settings.source)
    }
    key = host["accessKeyId"]
    control = _run(models, background, settings, lambda f: f.principal == host["arn"])
    own = [r for r in background if _key(r) == key]
    start = max(_time(r["eventTime"]) for r in own)
    region = Counter(str(r.get("awsRegion")) for r in own).most_common(1)[0][0]
    results = []
    by_technique: dict[str, list[Mapping[str, Any]]] = {}
    for technique, record in attacks:
        by_technique.setdefault(technique, []).append(record)
    for technique, rows in sorted(by_technique.items()):
        injected = _restamp(rows, host, start + timedelta(minutes=1), technique, region)
        ids = {r["eventID"] for r in injected}
        found = _run(
            models, _merged(background, injected), settings, lambda f: f.principal == host["arn"]
        )
        novel = len(
            {f.event_id for f in found.findings if f.kind == KINDS[0] and f.event_id in ids}
        )
        results.append(
            InjectedResult(
                technique=technique.removeprefix("aws."),
                events=len(rows),
                novel=novel,
                anomalous=any(f.kind == KINDS[1] for f in found.findings),
                sequence=any(f.kind == KINDS[2] for f in found.findings),
            )
        )
    return InjectionReport(
        host=f"{host['arn']} ({key})",
        background_events=len(background),
        control=Counter(f.kind for f in control.findings if f.kind in KINDS),
        techniques=results,
    )


def format_injection(report: InjectionReport) -> str:
    width = max(len(t.technique) for t in report.techniques)
    lines = [
        f"host session: {report.host}; background: {report.background_events:,} events; "
        f"baseline findings on the host without injection: "
        f"{dict(report.control) or 'none'}",
        "",
        f"{'technique':<{width}} {'events':>6} {'novel-action':>12} {'anomalous':>9} "
        f"{'sequence':>8}",
    ]
    lines.extend(
        f"{t.technique:<{width}} {t.events:>6} {t.novel:>12} "
        f"{'yes' if t.anomalous else 'no':>9} {'yes' if t.sequence else 'no':>8}"
        for t in report.techniques
    )
    fired = sum(1 for t in report.techniques if t.novel or t.anomalous or t.sequence)
    lines.append(f"\n{fired} of {len(report.techniques)} techniques raise a baseline finding.")
    return "\n".join(lines) + "\n"


class _Findings:
    """Wraps run-time views; keeps the findings `keep` accepts."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []


def _run(
    models: Mapping[str, TrainableModel],
    records: Iterable[Mapping[str, Any]],
    settings: Settings,
    keep: Any,
) -> _Findings:
    pipeline = build_pipeline(settings)
    policy = severity_policy(settings)
    pipeline.baselines = tuple(m.runtime(policy, settings.baseline) for m in models.values())
    out = _Findings()
    for record in records:
        result = pipeline.process(parse_record(dict(record)))
        out.findings.extend(f for f in result.findings if keep(f))
    out.findings.extend(f for f in pipeline.drain().findings if keep(f))
    return out


def _judged(records: Iterable[Mapping[str, Any]], settings: Settings) -> list[TrainingEvent]:
    """Training events of `records`: nothing at or above the cut-off."""
    cut = settings.severity.learn_below
    events = judge_records(records, settings)
    return [e for e in events if not any(f.severity >= cut for f in e.findings)]


def _host(labelled: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    identity: dict[str, dict[str, Any]] = {}
    for record, label in labelled:
        key = _key(record)
        if label.get("activity_class") == HOST_CLASS and key and key.startswith("AKIA"):
            counts[key] += 1
            identity.setdefault(key, dict(record["userIdentity"]))
    if not counts:
        raise ConfigError(f"{BACKGROUND}: no console or CLI session with an access key to host")
    return identity[counts.most_common(1)[0][0]]


def _restamp(
    rows: Sequence[Mapping[str, Any]],
    host: Mapping[str, Any],
    start: Any,
    technique: str,
    region: str,
) -> list[dict[str, Any]]:
    first = min(_time(r["eventTime"]) for r in rows)
    out = []
    for index, row in enumerate(rows):
        stamped = dict(row)
        stamped.update(
            eventID=f"injected-{technique}-{index:03d}",
            eventTime=(start + (_time(row["eventTime"]) - first)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            userIdentity=dict(host),
            recipientAccountId=host.get("accountId"),
            awsRegion=region,
        )
        out.append(stamped)
    return out


def _merged(*streams: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for s in streams for r in s), key=lambda r: str(r["eventTime"]))


def _key(record: Mapping[str, Any]) -> str | None:
    identity = record.get("userIdentity") or {}
    key = identity.get("accessKeyId")
    return str(key) if key else None


def _labelled(folder: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    events = (folder / "events.jsonl").read_bytes().splitlines()
    labels = (folder / "labels.jsonl").read_bytes().splitlines()
    return [(orjson.loads(e), orjson.loads(label)) for e, label in zip(events, labels, strict=True)]
