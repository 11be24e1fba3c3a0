"""`trailguard bench detection`: attack techniques as out-of-scope agent sessions in benign traffic.

The floor in tests/data/detection/stratus_expected.json holds each technique's result when it
was last raised; a technique that drops below it fails here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.bench_detection import (
    SCOPE_NAME,
    DetectionReport,
    TechniqueResult,
    detection_report,
    injected,
    restamp,
    scope_document,
)
from detector.catalog_loader import load_catalog
from detector.cli import EXIT_OK, main
from detector.config import Settings
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.core.scope import parse_scopes
from detector.core.sessions import SessionTracker
from detector.core.taxonomy import SessionKind, Severity
from detector.errors import ConfigError
from detector.wiring import marker_table, severity_policy

DATA = Path(__file__).parents[1] / "data"
ATTACKS = DATA / "cloudtrail" / "stratus_detonation_logs"
BACKGROUND = DATA / "cloudtrail" / "invictus_aws_dataset"
EXPECTED = json.loads((DATA / "detection" / "stratus_expected.json").read_text())["techniques"]
ACCOUNT = "123837392027"


@pytest.fixture(scope="module")
def report() -> DetectionReport:
    return detection_report(ATTACKS, BACKGROUND)


def _by_name(report: DetectionReport) -> dict[str, TechniqueResult]:
    return {t.technique: t for t in report.techniques}


@pytest.mark.parametrize("technique", sorted(EXPECTED))
def test_no_technique_drops_below_its_floor(report: DetectionReport, technique: str) -> None:
    floor = EXPECTED[technique]
    result = _by_name(report)[technique]
    if floor["min_severity"] is not None:
        assert result.top_severity is not None
        assert result.top_severity >= Severity.parse(floor["min_severity"])
    if floor["revoked"]:
        assert result.revoked


def test_every_technique_of_the_capture_has_a_floor(report: DetectionReport) -> None:
    assert set(_by_name(report)) == set(EXPECTED)
    assert len(EXPECTED) == 35


def test_the_floor_is_not_empty() -> None:
    # Guard against a floor file regenerated from a broken run: most techniques must be caught.
    caught = [t for t, floor in EXPECTED.items() if floor["min_severity"] is not None]
    assert len(caught) >= 30
    assert sum(1 for floor in EXPECTED.values() if floor["revoked"]) >= 10


def test_terraform_set_up_and_tear_down_raise_no_sequence_that_pages(
    report: DetectionReport,
) -> None:
    """The background's Terraform creates and destroys 1,938 calls' worth of Stratus
    infrastructure, trails and flow logs included; none of its sequences may page."""
    policy = severity_policy(Settings())
    assert report.background_sequences  # it does survey and then write: recorded
    assert all(severity < policy.alert_min for severity in report.background_sequences)


def test_tampering_and_exposure_are_critical_and_revoked(report: DetectionReport) -> None:
    results = _by_name(report)
    for technique in (
        "aws.defense-evasion.cloudtrail-stop",
        "aws.defense-evasion.cloudtrail-delete",
        "aws.defense-evasion.cloudtrail-event-selectors",
        "aws.defense-evasion.vpc-remove-flow-logs",
        "aws.defense-evasion.dns-delete-logs",
        "aws.exfiltration.ec2-share-ami",
        "aws.exfiltration.rds-share-snapshot",
    ):
        assert results[technique].top_severity is Severity.CRITICAL, technique
        assert results[technique].revoked, technique
        assert "out-of-scope-action" in results[technique].kinds


def test_the_background_raises_no_revocation_and_parses_whole(report: DetectionReport) -> None:
    assert report.background_events > 2000
    assert report.background_revocations == 0
    assert report.rejected == 0


# --- re-stamping -----------------------------------------------------------------------------


def _first(technique: str) -> dict[str, Any]:
    events = (ATTACKS / "events.jsonl").read_bytes().splitlines()
    labels = (ATTACKS / "labels.jsonl").read_bytes().splitlines()
    for line, label in zip(events, labels, strict=True):
        if orjson.loads(label)["technique"] == technique:
            record: dict[str, Any] = orjson.loads(line)
            return record
    raise AssertionError(technique)


def test_restamp_changes_who_when_and_where_but_not_what() -> None:
    original = _first("aws.exfiltration.ec2-share-ami")
    stamped = restamp(
        original, index=3, account=ACCOUNT, region="us-east-1", shift=timedelta(hours=1)
    )
    assert stamped["eventName"] == original["eventName"]
    assert stamped["eventSource"] == original["eventSource"]
    assert stamped["recipientAccountId"] == ACCOUNT
    assert stamped["awsRegion"] == "us-east-1"
    assert stamped["eventID"] == f"bench-03-{original['eventID']}"
    assert stamped["userIdentity"]["sessionContext"]["sourceIdentity"] == "agent-kiro-bench-03"
    before = datetime.strptime(original["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    after = datetime.strptime(stamped["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert after - before == timedelta(hours=1)
    # The capture's own account is ours now; the account the AMI is shared with is not.
    text = orjson.dumps(stamped).decode()
    assert original["recipientAccountId"] not in text
    event = parse_record(stamped)
    assert event.account_id == ACCOUNT


def test_an_injected_technique_is_one_agent_session_bound_to_the_scope() -> None:
    technique = "aws.credential-access.secretsmanager-retrieve-secrets"
    rows = [(technique, _first(technique)), (technique, _first(technique) | {"eventID": "x"})]
    start = datetime(2023, 7, 10, 11, 42, tzinfo=UTC)
    records, owner = injected(rows, account=ACCOUNT, region="us-east-1", start=start)
    assert set(owner.values()) == {technique}
    settings = Settings()
    pipeline = Pipeline(
        catalog=load_catalog(),
        scopes=parse_scopes(scope_document(ACCOUNT, "us-east-1"), source="t"),
        tracker=SessionTracker(marker_table(settings)),
        policy=severity_policy(settings),
    )
    results = [pipeline.process(parse_record(record)) for record in records]
    sessions = {r.session.session_id for r in results if r.session is not None}
    assert len(sessions) == 1
    findings = [f for r in results for f in r.findings]
    assert findings
    assert {f.session_kind for f in findings} == {SessionKind.AGENT}
    assert {f.scope for f in findings} == {SCOPE_NAME}


# --- the command -----------------------------------------------------------------------------


def test_bench_detection_prints_one_row_per_technique(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "detection", "--attacks", str(ATTACKS), "--background", str(BACKGROUND)])
    assert code == EXIT_OK
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("aws.")]
    assert len(rows) == 35
    assert any(
        "aws.defense-evasion.cloudtrail-stop" in row and "critical" in row and " yes " in row
        for row in rows
    )
    assert "35 techniques:" in out


def test_bench_detection_json_matches_the_report(
    capsys: pytest.CaptureFixture[str], report: DetectionReport
) -> None:
    main(
        ["bench", "detection", "--json", "--attacks", str(ATTACKS), "--background", str(BACKGROUND)]
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [t.to_record() for t in report.techniques]


def test_a_folder_without_labelled_events_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read a labelled dataset"):
        detection_report(tmp_path, BACKGROUND)


def _dataset(folder: Path, rows: list[tuple[bytes, dict[str, Any]]]) -> Path:
    folder.mkdir()
    (folder / "events.jsonl").write_bytes(b"".join(line + b"\n" for line, _ in rows))
    (folder / "labels.jsonl").write_bytes(b"".join(orjson.dumps(lb) + b"\n" for _, lb in rows))
    return folder


def test_bad_records_are_counted_and_the_rest_still_judged(tmp_path: Path) -> None:
    technique = "aws.defense-evasion.cloudtrail-stop"
    attack = {"technique": technique, "label": "attack"}
    attacks = _dataset(
        tmp_path / "attacks",
        [
            (orjson.dumps(_first(technique)), attack),
            (b"{not json", attack),
            (orjson.dumps({"eventName": "StopLogging"}), attack),  # no eventTime
        ],
    )
    benign = {"activity_class": "other_console_cli_sdk"}
    lines = (BACKGROUND / "events.jsonl").read_bytes().splitlines()[:50]
    wrong_identity = {**orjson.loads(lines[0]), "eventID": "odd", "userIdentity": "root"}
    background = _dataset(
        tmp_path / "background",
        [(line, benign) for line in lines] + [(orjson.dumps(wrong_identity), benign)],
    )
    report = detection_report(attacks, background)
    assert report.rejected == 3
    (result,) = report.techniques
    assert result.top_severity is Severity.CRITICAL
    assert result.revoked


def test_events_and_labels_of_different_lengths_are_a_clear_error(tmp_path: Path) -> None:
    folder = _dataset(
        tmp_path / "a",
        [(orjson.dumps(_first("aws.exfiltration.ec2-share-ami")), {"technique": "t"})],
    )
    (folder / "labels.jsonl").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"events\.jsonl has 1 lines, labels\.jsonl 0"):
        detection_report(folder, BACKGROUND)
