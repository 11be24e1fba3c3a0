"""`trailguard scope suggest` on real CloudTrail: the Invictus capture's Terraform session.

The suggested scope must admit every event of that session, and refuse every Stratus Red
Team technique event (re-stamped into the same account and region, as the detection bench
does) whose actions the Terraform session never took.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detector.bench_detection import injected
from detector.config import Settings
from detector.core.actions import resolve_actions
from detector.core.events import CloudTrailEvent
from detector.core.parse import parse_record
from detector.core.resources import extract_resources
from detector.core.scope import Scope
from detector.core.scope_schema import check_document
from detector.scope_file import load_scopes, read_scope_document
from detector.wiring import build_pipeline

DATA = Path(__file__).resolve().parents[1] / "data" / "cloudtrail"
INVICTUS = DATA / "invictus_aws_dataset"
STRATUS = DATA / "stratus_detonation_logs"
TERRAFORM = "stratus_terraform_warmup_cleanup"


def _trailguard(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "detector", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _labelled(folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    events = (folder / "events.jsonl").read_text().splitlines()
    labels = (folder / "labels.jsonl").read_text().splitlines()
    return [(json.loads(e), json.loads(label)) for e, label in zip(events, labels, strict=True)]


def _in_scope(scope: Scope, event: CloudTrailEvent) -> bool:
    verdict = scope.evaluate(
        actions=resolve_actions(event.event_source, event.event_name),
        resources=extract_resources(event),
        region=event.aws_region,
        account=event.account_id,
        at=event.event_time,
    )
    return verdict.in_scope


@pytest.fixture(scope="module")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    """The capture's Terraform events (by label) and the scope suggested from their session."""
    records = [
        record for record, label in _labelled(INVICTUS) if label["activity_class"] == TERRAFORM
    ]
    folder = tmp_path_factory.mktemp("suggest")
    events = folder / "terraform.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in records))
    listed = _trailguard("sessions", "--format", "jsonl", str(events))
    assert listed.returncode == 0, listed.stderr
    (session,) = [json.loads(line) for line in listed.stdout.splitlines()]
    done = _trailguard(
        "scope", "suggest", "--from", str(events), "--session", session["session_id"]
    )
    assert done.returncode == 0, done.stderr
    scope_file = folder / "suggested.yaml"
    scope_file.write_text(done.stdout)
    return records, scope_file


def test_the_suggestion_is_a_valid_scope_file(terraform: tuple[list[dict[str, Any]], Path]) -> None:
    _, scope_file = terraform
    specs, errors = check_document(read_scope_document(scope_file), source=str(scope_file))
    assert errors == ()
    (spec,) = specs
    assert spec.match == (("principal_arn", "arn:aws:iam::123837392027:user/bert-jan"),)
    assert spec.allow_regions == ("us-east-1",)
    assert spec.allow_accounts == ("123837392027",)
    # Action level, never service level.
    assert all(not action.endswith(":*") for action in spec.allow_actions)
    assert "ec2:CreateVpc" in spec.allow_actions
    text = scope_file.read_text()
    assert '- "ec2:CreateVpc"  # seen 10 times, 3 failed but authorised' in text


def test_every_event_of_the_terraform_session_is_in_scope(
    terraform: tuple[list[dict[str, Any]], Path],
) -> None:
    records, scope_file = terraform
    (scope,) = load_scopes(scope_file).scopes
    events = [parse_record(r) for r in records]
    outside = [e.event_id for e in events if not _in_scope(scope, e)]
    assert len(events) == 1938
    assert outside == []


def test_the_pipeline_binds_the_session_to_the_scope_and_finds_nothing_out_of_scope(
    terraform: tuple[list[dict[str, Any]], Path],
) -> None:
    records, scope_file = terraform
    pipeline = build_pipeline(Settings(), scopes_path=scope_file)
    bound: Counter[str | None] = Counter()
    kinds: Counter[str] = Counter()
    for record in records:
        result = pipeline.process(parse_record(record))
        assert result.session is not None
        scope = pipeline.scopes.bind(result.session)
        bound[scope.name if scope is not None else None] += 1
        kinds.update(f.kind for f in result.findings)
    assert list(bound) == [load_scopes(scope_file).scopes[0].name]
    assert not [
        kind for kind in kinds if kind.startswith("out-of-scope") or kind == "scope-expired"
    ]


def test_no_stratus_event_outside_the_terraform_actions_is_admitted(
    terraform: tuple[list[dict[str, Any]], Path],
) -> None:
    records, scope_file = terraform
    (scope,) = load_scopes(scope_file).scopes
    taken = {a for r in records for a in resolve_actions(r["eventSource"], r["eventName"])}
    attacks = [(str(label["technique"]), record) for record, label in _labelled(STRATUS)]
    stamped, owner = injected(
        attacks,
        account="123837392027",
        region="us-east-1",
        start=datetime(2023, 7, 10, 11, 0, tzinfo=UTC),
    )
    outside = [
        parse_record(r)
        for r in stamped
        if not set(resolve_actions(r["eventSource"], r["eventName"])) <= taken
    ]
    techniques = {owner[e.event_id] for e in outside}
    admitted = [e.event_id for e in outside if _in_scope(scope, e)]
    # Not vacuous: most techniques do something Terraform never did.
    assert len(outside) > 200
    assert len(techniques) >= 30
    assert admitted == []


def test_several_sessions_and_no_choice_is_a_usage_error_naming_the_busiest() -> None:
    done = _trailguard("scope", "suggest", "--from", str(INVICTUS / "events.jsonl"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "choose one with --session ID or --principal ARN" in done.stderr
    assert "ses-e1da3fb324f492e1 (2104 events)" in done.stderr


def test_an_unknown_session_is_a_usage_error() -> None:
    done = _trailguard(
        "scope", "suggest", "--from", str(INVICTUS / "events.jsonl"), "--session", "ses-nope"
    )
    assert done.returncode == 2
    assert "no session 'ses-nope'" in done.stderr


def test_a_principal_gathers_all_its_sessions_and_lists_refused_calls(tmp_path: Path) -> None:
    principal = "arn:aws:iam::123837392027:user/bert-jan"
    done = _trailguard(
        "scope", "suggest", "--from", str(INVICTUS / "events.jsonl"), "--principal", principal,
        "--name", "bert-jan-history",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    path = tmp_path / "bert-jan.yaml"
    path.write_text(done.stdout)
    (scope,) = load_scopes(path).scopes
    assert scope.name == "bert-jan-history"
    assert [(f, p) for f, p, _ in scope.match] == [("principal_arn", principal)]
    # Refused (AccessDenied) in the capture, never authorised: a comment, not an allow.
    assert '#   - "ce:GetCostAndUsage"  # denied once (AccessDenied)' in done.stdout
    assert scope.allow_actions.first("ce:GetCostAndUsage") is None
