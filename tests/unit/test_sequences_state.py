"""Sequences in event time: late arrival, redelivery, bounded state, restarts, settings, and
the incident they exist for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.config import Settings, StateSettings, load_settings
from detector.core.parse import parse_record
from detector.core.pipeline import Pipeline
from detector.core.sequence_state import MAX_ANCHORS, MAX_READS, MAX_WRITES
from detector.core.taxonomy import Severity
from detector.errors import ConfigError
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident, scenario
from tests.unit.sequence_events import (
    AGENT,
    NEW_KEY,
    agent_creates_key,
    at,
    call,
    pipeline,
    run,
    sequences,
    stack,
    steps,
    user,
)

# --- out of order ------------------------------------------------------------------------------


def test_a_delete_arriving_after_its_recreate_within_the_lateness_completes_it(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path)
    create = call("c1", "cloudformation:CreateStack", at(10), identity=AGENT, params=stack())
    delete = call("d1", "cloudformation:DeleteStack", at(7), identity=AGENT, params=stack())
    assert run(p, create) == []
    [found] = sequences(p.process(delete))
    assert found.event_id == "d1" and found.severity is Severity.CRITICAL
    # The evidence is in event time, whatever the arrival order.
    assert [s.split(" (event ")[1] for s in steps(found)] == ["d1)", "c1)"]


def test_a_call_later_than_the_lateness_is_left_out(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    create = call("c1", "cloudformation:CreateStack", at(10), identity=AGENT, params=stack())
    later = call("r1", "s3:ListBuckets", at(30), identity=AGENT)  # the watermark: 10:30
    delete = call("d1", "cloudformation:DeleteStack", at(7), identity=AGENT, params=stack())
    assert run(p, create, later, delete) == []  # 23 minutes behind; the lateness is 15
    assert p.sequences.late_events == 1


def test_the_lateness_is_a_setting(tmp_path: Path) -> None:
    from detector.config import SeveritySettings

    settings = SeveritySettings(sequence_lateness_seconds=3600)
    p = pipeline(tmp_path, severity=settings)
    create = call("c1", "cloudformation:CreateStack", at(10), identity=AGENT, params=stack())
    later = call("r1", "s3:ListBuckets", at(30), identity=AGENT)
    delete = call("d1", "cloudformation:DeleteStack", at(7), identity=AGENT, params=stack())
    assert [f.event_id for f in run(p, create, later, delete)] == ["d1"]


def test_a_blinding_that_arrives_after_the_write(tmp_path: Path) -> None:
    found = run(
        pipeline(tmp_path),
        call("w1", "s3:PutObject", at(5), identity=AGENT, params={"bucketName": "x"}),
        call("s1", "cloudtrail:StopLogging", at(2), identity=AGENT, params={"name": "org"}),
    )
    assert [(f.event_id, f.severity) for f in found] == [("s1", Severity.CRITICAL)]


def test_a_write_arriving_before_the_blinding_it_follows_in_event_time(tmp_path: Path) -> None:
    """Arrival order never makes an earlier write follow a later blinding."""
    found = run(
        pipeline(tmp_path),
        call("s1", "cloudtrail:StopLogging", at(5), identity=AGENT, params={"name": "org"}),
        call("w1", "s3:PutObject", at(2), identity=AGENT, params={"bucketName": "x"}),
    )
    assert found == []


def test_reconnaissance_reported_after_the_write(tmp_path: Path) -> None:
    reads = [
        "ec2:DescribeInstances", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups", "iam:ListRoles", "iam:ListUsers", "s3:ListBuckets",
        "rds:DescribeDBInstances", "secretsmanager:ListSecrets", "sns:ListTopics",
    ]  # fmt: skip
    p = pipeline(tmp_path)
    write = call("w1", "sqs:SendMessage", at(5), identity=AGENT)
    late = [call(f"r{i}", a, at(4, i * 2), identity=AGENT) for i, a in enumerate(reads)]
    found = run(p, write, *late)
    assert [f.event_id for f in found] == ["r9"]  # the read that made it a burst


def test_a_key_used_before_its_creation_arrives(tmp_path: Path) -> None:
    found = run(
        pipeline(tmp_path),
        call("u1", "sts:GetCallerIdentity", at(3), identity=user("backup", "AKIANEWKEY0000000001")),
        call(
            "k1",
            "iam:CreateAccessKey",
            at(1),
            identity=AGENT,
            params={"userName": "backup"},
            response={"accessKey": {"accessKeyId": "AKIANEWKEY0000000001"}},
        ),
    )
    assert [(f.event_id, f.severity) for f in found] == [("k1", Severity.HIGH)]
    assert "used them in session ses-" in found[0].reason


# --- once per sequence -------------------------------------------------------------------------


def test_redelivered_and_repeated_calls_raise_a_sequence_once(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    delete = call("d1", "cloudformation:DeleteStack", at(1), identity=AGENT, params=stack())
    create = call("c1", "cloudformation:CreateStack", at(2), identity=AGENT, params=stack())
    retry = call("c2", "cloudformation:CreateStack", at(3), identity=AGENT, params=stack())
    found = run(p, delete, create, delete, create, retry)
    assert [f.event_id for f in found] == ["c1"]


def test_a_restart_mid_sequence_resumes_it_once(tmp_path: Path) -> None:
    before = pipeline(tmp_path)
    delete = call("d1", "cloudformation:DeleteStack", at(1), identity=AGENT, params=stack())
    create = call("c1", "cloudformation:CreateStack", at(2), identity=AGENT, params=stack())
    assert run(before, delete) == []
    state = orjson.loads(orjson.dumps(before.snapshot()))
    after = pipeline(tmp_path)
    after.restore(state)
    assert [f.event_id for f in run(after, create)] == ["c1"]
    again = pipeline(tmp_path)
    again.restore(orjson.loads(orjson.dumps(after.snapshot())))
    retry = call("c2", "cloudformation:CreateStack", at(3), identity=AGENT, params=stack())
    assert run(again, retry) == []


def test_a_restart_keeps_who_acts_as_an_identity_for_a_grant_that_arrives_late(
    tmp_path: Path,
) -> None:
    # The key's use is delivered before the call that created it; a restart in between.
    used = call("u1", "s3:ListBuckets", at(3), identity=user("backup", NEW_KEY))
    continuous = pipeline(tmp_path)
    assert run(continuous, used) == []
    expected = [f.to_record() for f in run(continuous, agent_creates_key("k1", at(1)))]
    assert [r["event_id"] for r in expected] == ["k1"]
    before = pipeline(tmp_path)
    run(before, used)
    after = pipeline(tmp_path)
    after.restore(orjson.loads(orjson.dumps(before.snapshot())))
    assert [f.to_record() for f in run(after, agent_creates_key("k1", at(1)))] == expected


def test_a_restart_keeps_grants_for_uses_in_other_sessions(tmp_path: Path) -> None:
    before = pipeline(tmp_path)
    run(
        before,
        call(
            "k1",
            "iam:CreateAccessKey",
            at(1),
            identity=AGENT,
            params={"userName": "backup"},
            response={"accessKey": {"accessKeyId": "AKIANEWKEY0000000001"}},
        ),
    )
    after = pipeline(tmp_path)
    after.restore(orjson.loads(orjson.dumps(before.snapshot())))
    used = call("u1", "s3:ListBuckets", at(2), identity=user("backup", "AKIANEWKEY0000000001"))
    assert [f.event_id for f in run(after, used)] == ["u1"]


def test_a_snapshot_from_before_sequences_restores(tmp_path: Path) -> None:
    old = pipeline(tmp_path)
    run(old, call("d1", "cloudformation:DeleteStack", at(1), identity=AGENT, params=stack()))
    snapshot = old.snapshot()
    del snapshot["sequences"]
    fresh = pipeline(tmp_path)
    fresh.restore(snapshot)
    assert len(fresh.sequences) == 0
    create = call("c1", "cloudformation:CreateStack", at(2), identity=AGENT, params=stack())
    assert run(fresh, create) == []  # the delete was before sequences were kept


# --- bounded -----------------------------------------------------------------------------------


def test_state_per_session_is_capped(tmp_path: Path) -> None:
    from detector.config import SeveritySettings

    # No burst, so that every distinct read is kept (a burst's own reads are not).
    p = pipeline(tmp_path, severity=SeveritySettings(recon_distinct_reads=1000))
    for index in range(300):
        when = f"2025-12-08T10:{index // 60:02d}:{index % 60:02d}Z"
        p.process(call(f"d{index}", "sqs:DeleteQueue", when, params={"queueName": f"q{index}"}))
        p.process(call(f"r{index}", f"ec2:DescribeThing{index}", when))
    [state] = p.sequences.states()
    assert len(state.destroys) == MAX_ANCHORS and len(state.writes) == MAX_WRITES
    assert len(list(state.read_steps())) == min(MAX_READS, 300)


def test_old_steps_are_pruned_in_event_time(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    p.process(call("d1", "sqs:DeleteQueue", at(0, hour=8), params={"queueName": "q"}))
    p.process(call("r1", "s3:ListBuckets", at(0, hour=10)))
    [state] = p.sequences.states()
    assert not state.destroys and not state.writes
    assert [s.action for s in state.read_steps()] == ["s3:ListAllMyBuckets"]


def test_forgotten_sessions_take_their_sequences_with_them(tmp_path: Path) -> None:
    p = pipeline(tmp_path, scopes="scopes: []", state=StateSettings(max_sessions=3))
    for index in range(10):
        person = user(f"u{index}")
        key = {"accessKey": {"accessKeyId": f"AKIANEW{index:013d}"}}
        p.process(
            call(f"c{index}", "iam:CreateAccessKey", at(index), identity=person, response=key)
        )
    assert len(p.sequences) == 3
    assert p.sequences.indexed_grants == 3
    p.evict_idle(parse_record(_later()).event_time)
    assert len(p.sequences) == 0 and p.sequences.indexed_grants == 0


def _later() -> dict[str, Any]:
    from tests.conftest import make_event

    return make_event(eventTime="2030-01-01T00:00:00Z")


# --- settings ----------------------------------------------------------------------------------


def test_sequence_severities_and_windows_are_severity_keys(tmp_path: Path) -> None:
    path = tmp_path / "trailguard.yaml"
    path.write_text(
        "severity: {sequence_recreate: medium, agent_sequence_recreate: high,"
        " sequence_window_seconds: 60}\n"
    )
    settings = load_settings(path)
    p = build_pipeline(settings, scopes_path=None)
    human = [
        call("d1", "dynamodb:DeleteTable", at(1), params={"tableName": "t"}),
        call("c1", "dynamodb:CreateTable", at(1, 30), params={"tableName": "t"}),
        call("d2", "dynamodb:DeleteTable", at(2), params={"tableName": "u"}),
        call("c2", "dynamodb:CreateTable", at(4), params={"tableName": "u"}),  # after 60 s
    ]
    assert [(f.event_id, f.severity) for f in run(p, *human)] == [("c1", Severity.MEDIUM)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severity: {sequence_window_seconds: 0}\n", "'severity.sequence_window_seconds' must be"),
        ("severity: {recon_distinct_reads: 0}\n", "'severity.recon_distinct_reads' must be"),
        ("severity: {agent_sequence_destroy: loud}\n", "'severity.agent_sequence_destroy'"),
    ],
)
def test_bad_sequence_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "trailguard.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


# --- the incident ------------------------------------------------------------------------------


def _incident_sequences(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pipeline = build_pipeline(Settings(), scopes_path=DEMO / "scopes.yaml")
    found = []
    for record in records:
        for finding in sequences(pipeline.process(parse_record(record))):
            found.append(finding.to_record())
    return found


def test_the_incident_delete_and_recreate_is_a_critical_suspicious_sequence() -> None:
    found = _incident_sequences(incident())
    stack_rebuild = [f for f in found if f["action"] == "cloudformation:CreateStack"]
    assert len(stack_rebuild) == 1
    [finding] = stack_rebuild
    assert finding["severity"] == "critical" and finding["agent"] == "kiro"
    assert finding["human"] == "alice@example.com"
    stack_arn = "arn:aws:cloudformation:us-east-1:111122223333:stack/ce-prod"
    assert f"deleted {stack_arn}" in finding["reason"]
    evidence = [e for e in finding["evidence"] if e.startswith("sequence ")]
    assert "2025-12-08T10:07:15Z cloudformation:DeleteStack" in evidence[0]
    assert "2025-12-08T10:10:30Z cloudformation:CreateStack" in evidence[1]
    # The role, table and function it rebuilt too, and the log group it deleted before
    # writing on; nothing from the other sessions of the capture.
    assert {f["session_id"] for f in found} == {finding["session_id"]}
    assert {f["severity"] for f in found} == {"critical"}
    assert len(found) == 5


def test_the_incident_inside_ordinary_traffic_raises_the_same() -> None:
    """tests/scenario.py, what the service tests replay and run."""
    alone = _incident_sequences(incident())
    mixed = _incident_sequences(scenario(3000))
    ids = {f["event_id"] for f in alone}
    assert [(f["event_id"], f["severity"]) for f in mixed if f["event_id"] in ids] == [
        (f["event_id"], f["severity"]) for f in alone
    ]
    # The background's people survey and then write now and then: recorded, never paging.
    assert {f["severity"] for f in mixed if f["event_id"] not in ids} == {"low"}


def test_steps_of_every_kind_survive_the_snapshot_exactly() -> None:
    from detector.core.sequence_steps import Grant, Mark, Step

    when = parse_record(_later()).event_time
    kinds = [
        Step(event_id="r", at=when, session_id="s", action="s3:ListAllMyBuckets",
             resource=None, marks=Mark.READ, actions=("s3:ListAllMyBuckets",)),
        Step(event_id="c", at=when, session_id="s", action="s3:GetObject", resource="arn:x",
             marks=Mark.READ, actions=("s3:GetObject", "s3:PutObject")),
        Step(event_id="l", at=when, session_id="s", action="signin:ConsoleLogin",
             resource=None, marks=0, uses=("login:1:bob",), actions=("signin:ConsoleLogin",)),
        Step(event_id="g", at=when, session_id="s", action="iam:PutUserPolicy",
             resource="arn:u", marks=Mark.WRITE | Mark.GRANT, keys=("arn:u",), noun="UserPolicy",
             actions=("iam:PutUserPolicy",),
             grant=Grant(keys=("user:1:bob",), actions=("s3:*",), label="user bob")),
        Step(event_id="k", at=when, session_id="s", action="iam:CreateAccessKey",
             resource=None, marks=Mark.WRITE | Mark.GRANT, actions=("iam:CreateAccessKey",),
             grant=Grant(keys=("key:AKIA1",), actions=None, label="access key AKIA1")),
    ]  # fmt: skip
    for step in kinds:
        raw = orjson.loads(orjson.dumps(step.to_list()))
        assert Step.from_list(raw, "s") == step


@pytest.mark.parametrize("cut", [400, 1100, 1900, 2600])
def test_a_restart_anywhere_in_a_real_capture_changes_no_sequence(cut: int) -> None:
    """The Invictus capture: Terraform, a Stratus run, people and services in one account."""
    from tests.conftest import CLOUDTRAIL, read_jsonl

    records = list(read_jsonl(CLOUDTRAIL / "invictus_aws_dataset" / "events.jsonl"))

    def found(p: Pipeline, part: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [f.to_record() for r in part for f in sequences(p.process(parse_record(r)))]

    whole = found(build_pipeline(Settings(), scopes_path=None), records)
    before = build_pipeline(Settings(), scopes_path=None)
    first = found(before, records[:cut])
    after = build_pipeline(Settings(), scopes_path=None)
    after.restore(orjson.loads(orjson.dumps(before.snapshot())))
    assert first + found(after, records[cut:]) == whole
    assert whole  # the capture holds sequences to resume
