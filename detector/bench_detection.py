"""`trailguard bench detection`: what each attack technique looks like when an agent does it.

Each technique of a labelled attack capture (the Stratus Red Team detonation logs) is
re-stamped as one out-of-scope agent session: its own role session with an agent
SourceIdentity and an agent user agent, bound to a task scope that allows none of its calls,
in the background capture's account and region. All of them are injected, time-shifted, into
a benign background capture (which keeps its own principals) and replayed through the same
pipeline `replay` and the service run. For each technique the table gives the top severity,
whether a revocation was decided and which finding kinds fired.

Re-stamping changes only who made the calls, when and where; every eventName, eventSource,
request and response parameter, error code and user-agent-independent field is the capture's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from detector.catalog_loader import load_catalog
from detector.config import Settings
from detector.core.events import CloudTrailEvent
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.core.scope import parse_scopes
from detector.core.sessions import SessionTracker
from detector.core.taxonomy import Severity
from detector.errors import ConfigError, ParseError
from detector.wiring import marker_table, severity_policy

ATTACKS = Path("tests/data/cloudtrail/stratus_detonation_logs")
BACKGROUND = Path("tests/data/cloudtrail/invictus_aws_dataset")
# The background capture's own attack run is not background: only these classes are kept.
BENIGN_CLASSES = frozenset(
    {"stratus_terraform_warmup_cleanup", "aws_service_or_internal", "other_console_cli_sdk"}
)

AGENT_ROLE = "trailguard-bench-agent"
SOURCE_IDENTITY = "agent-kiro-bench-{index:02d}"
# AWS CLI v2 with feature id AQ (KIRO_SESSION_ID in the environment): the agent marker.
USER_AGENT = (
    "aws-cli/2.35.30 md/awscrt#0.27.2 ua/2.1 os/linux#6.8 md/arch#x86_64 lang/python#3.13.7 "
    "md/pyimpl#CPython m/AQ,Z,b cfg/retry-mode#standard"
)
SCOPE_NAME = "bench-cost-report"
# The first technique starts this long after the background does, the next this much later.
FIRST_OFFSET = timedelta(minutes=5)
SPACING = timedelta(seconds=60)


@dataclass(frozen=True, slots=True, kw_only=True)
class TechniqueResult:
    """What the pipeline made of one technique's events."""

    technique: str
    events: int
    top_severity: Severity | None
    revoked: bool
    kinds: tuple[str, ...]  # the finding kinds that fired, most frequent first

    def to_record(self) -> dict[str, Any]:
        return {
            "technique": self.technique,
            "events": self.events,
            "top_severity": self.top_severity.label if self.top_severity is not None else None,
            "revoked": self.revoked,
            "kinds": list(self.kinds),
        }


@dataclass(slots=True, kw_only=True)
class DetectionReport:
    techniques: list[TechniqueResult]
    background_events: int
    background_findings: Counter[Severity] = field(default_factory=Counter)
    # The suspicious sequences among them: what ordinary IaC churn and console work raise.
    background_sequences: Counter[Severity] = field(default_factory=Counter)
    background_revocations: int = 0
    rejected: int = 0


# --- re-stamping (pure) ------------------------------------------------------------------------


def restamp(
    record: Mapping[str, Any],
    *,
    index: int,
    account: str,
    region: str,
    shift: timedelta,
) -> dict[str, Any]:
    """One attack record as made by bench agent number `index` in `account` and `region`."""
    original = str(record.get("recipientAccountId") or "")
    text = orjson.dumps(record).decode()
    if original.isdigit() and len(original) == 12:
        # Resource ARNs and policies name the capture's (pseudonymised) account: make them ours,
        # so that "another account" in a request still means another account.
        text = text.replace(original, account)
    stamped: dict[str, Any] = orjson.loads(text)
    session = f"bench-{index:02d}"
    created = _time(stamped["eventTime"]) + shift - timedelta(minutes=1)
    stamped.update(
        eventID=f"bench-{index:02d}-{stamped.get('eventID', '')}",
        eventTime=_stamp(_time(stamped["eventTime"]) + shift),
        awsRegion=region,
        recipientAccountId=account,
        userAgent=USER_AGENT,
        sourceIPAddress="203.0.113.10",
        userIdentity={
            "type": "AssumedRole",
            "principalId": f"AROABENCHAGENTROLE0001:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{AGENT_ROLE}/{session}",
            "accountId": account,
            "accessKeyId": f"ASIABENCH{index:011d}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROABENCHAGENTROLE0001",
                    "arn": f"arn:aws:iam::{account}:role/{AGENT_ROLE}",
                    "accountId": account,
                    "userName": AGENT_ROLE,
                },
                "attributes": {"creationDate": _stamp(created), "mfaAuthenticated": "false"},
                "sourceIdentity": SOURCE_IDENTITY.format(index=index),
            },
        },
    )
    return stamped


def scope_document(account: str, region: str) -> dict[str, Any]:
    """The task every bench agent is on: a cost report, which allows none of the techniques."""
    return {
        "scopes": [
            {
                "name": SCOPE_NAME,
                "description": "read last month's cost and usage",
                "match": {"source_identity": "agent-kiro-bench-*"},
                "allow": {
                    "actions": ["ce:GetCostAndUsage", "ce:GetCostForecast"],
                    "regions": [region],
                    "accounts": [account],
                },
                "on_violation": "revoke",
            }
        ]
    }


def injected(
    attacks: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    account: str,
    region: str,
    start: datetime,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Re-stamped attack records, and {eventID: technique}. Techniques keep their own order
    and their events keep their relative timing."""
    by_technique: dict[str, list[Mapping[str, Any]]] = {}
    for technique, record in attacks:
        by_technique.setdefault(technique, []).append(record)
    records: list[dict[str, Any]] = []
    owner: dict[str, str] = {}
    for index, (technique, rows) in enumerate(sorted(by_technique.items())):
        first = min(_time(row["eventTime"]) for row in rows)
        shift = start + FIRST_OFFSET + index * SPACING - first
        for row in rows:
            stamped = restamp(row, index=index, account=account, region=region, shift=shift)
            records.append(stamped)
            owner[stamped["eventID"]] = technique
    return records, owner


def merged(*streams: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """All records in eventTime order (stable: a stream's own order breaks ties)."""
    return sorted((r for stream in streams for r in stream), key=lambda r: str(r["eventTime"]))


# --- the run -----------------------------------------------------------------------------------


def detection_report(
    attacks_dir: Path = ATTACKS,
    background_dir: Path = BACKGROUND,
    settings: Settings | None = None,
) -> DetectionReport:
    settings = settings or Settings()
    report = DetectionReport(techniques=[], background_events=0)
    attacks = [
        (str(label.get("technique")), record)
        for record, label in _labelled(attacks_dir, report)
        if label.get("label", "attack") == "attack"
    ]
    background = [
        record
        for record, label in _labelled(background_dir, report)
        if label.get("activity_class") in BENIGN_CLASSES
    ]
    report.background_events = len(background)
    if not attacks or not background:
        raise ConfigError(f"{attacks_dir} and {background_dir} must both hold labelled events")
    account = Counter(str(r.get("recipientAccountId")) for r in background).most_common(1)[0][0]
    region = Counter(str(r.get("awsRegion")) for r in background).most_common(1)[0][0]
    start = min(_time(r["eventTime"]) for r in background)
    stamped, owner = injected(attacks, account=account, region=region, start=start)
    pipeline = Pipeline(
        catalog=load_catalog(settings.catalog.overrides),
        scopes=parse_scopes(scope_document(account, region), source="<bench detection>"),
        tracker=SessionTracker(marker_table(settings), max_sessions=settings.state.max_sessions),
        policy=severity_policy(settings),
        responses_enabled=False,
    )
    counts: Counter[str] = Counter(owner.values())
    severities: dict[str, Severity] = {}
    kinds: dict[str, Counter[str]] = {technique: Counter() for technique in counts}
    revoked: set[str] = set()
    for event in _events(merged(background, stamped), report):
        result = pipeline.process(event)
        for finding in result.findings:
            technique = owner.get(finding.event_id)
            if technique is None:
                report.background_findings[finding.severity] += 1
                if finding.kind == "suspicious-sequence":
                    report.background_sequences[finding.severity] += 1
                continue
            kinds[technique][finding.kind] += 1
            severities[technique] = max(finding.severity, severities.get(technique, Severity.INFO))
        for response in result.responses:
            technique = owner.get(response.event_id)
            if technique is None:
                report.background_revocations += 1
            else:
                revoked.add(technique)
    report.techniques = [
        TechniqueResult(
            technique=technique,
            events=counts[technique],
            top_severity=severities.get(technique),
            revoked=technique in revoked,
            kinds=tuple(kind for kind, _ in kinds[technique].most_common()),
        )
        for technique in sorted(counts)
    ]
    return report


def format_table(report: DetectionReport) -> str:
    width = max(len(t.technique) for t in report.techniques)
    lines = [f"{'technique':<{width}} {'events':>6} {'top':<8} {'revoke':<6} finding kinds"]
    for t in report.techniques:
        top = t.top_severity.label if t.top_severity is not None else "-"
        revoke = "yes" if t.revoked else "no"
        kinds = ", ".join(t.kinds) or "-"
        lines.append(f"{t.technique:<{width}} {t.events:>6} {top:<8} {revoke:<6} {kinds}")
    detected = sum(1 for t in report.techniques if t.top_severity is not None)
    revoked = sum(1 for t in report.techniques if t.revoked)
    by_severity = ", ".join(
        f"{count} {severity.label}"
        for severity, count in sorted(report.background_findings.items(), reverse=True)
    )
    sequences = ", ".join(
        f"{count} {severity.label}"
        for severity, count in sorted(report.background_sequences.items(), reverse=True)
    )
    lines += [
        "",
        f"{len(report.techniques)} techniques: {detected} with findings, {revoked} revoked.",
        f"background: {report.background_events} events, findings: {by_severity or 'none'}, "
        f"revocations: {report.background_revocations}; rejected records: {report.rejected}.",
        f"background suspicious sequences: {sequences or 'none'}.",
    ]
    return "\n".join(lines) + "\n"


def run(
    out: IO[str],
    *,
    attacks: Path = ATTACKS,
    background: Path = BACKGROUND,
    settings: Settings | None = None,
    as_json: bool = False,
) -> None:
    report = detection_report(attacks, background, settings)
    if as_json:
        for technique in report.techniques:
            out.write(orjson.dumps(technique.to_record()).decode() + "\n")
    else:
        out.write(format_table(report))


# --- reading -----------------------------------------------------------------------------------


def _labelled(
    folder: Path, report: DetectionReport
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(record, label) pairs of a dataset folder: events.jsonl with a parallel labels.jsonl.

    A line that is not a JSON object with a well-formed eventTime is counted as rejected."""
    try:
        events = (folder / "events.jsonl").read_bytes().splitlines()
        labels = (folder / "labels.jsonl").read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot read a labelled dataset: {exc.strerror}") from exc
    if len(events) != len(labels):
        raise ConfigError(
            f"{folder}: events.jsonl has {len(events)} lines, labels.jsonl {len(labels)}"
        )
    for line, label_line in zip(events, labels, strict=True):
        pair = _pair(line, label_line)
        if pair is None:
            report.rejected += 1
        else:
            yield pair


def _pair(line: bytes, label_line: bytes) -> tuple[dict[str, Any], dict[str, Any]] | None:
    try:
        record, label = orjson.loads(line), orjson.loads(label_line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(label, dict):
        return None
    try:
        _time(record.get("eventTime"))
    except (ValueError, TypeError):
        return None
    return record, label


def _events(
    records: Iterable[dict[str, Any]], report: DetectionReport
) -> Iterator[CloudTrailEvent]:
    for record in records:
        try:
            yield parse_record(record)
        except ParseError:
            report.rejected += 1


def _time(value: Any) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
