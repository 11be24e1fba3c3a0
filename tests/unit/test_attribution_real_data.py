"""Attribution on the real CloudTrail captures in tests/data/cloudtrail.

Every expectation is derived from the raw JSON by a simple rule written next to it, not from
the tracker, so the two can disagree.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import pytest

from detector.core.agents import DEFAULT_MARKERS, AgentMarkerTable
from detector.core.events import CloudTrailEvent
from detector.core.parse import parse_record
from detector.core.session_view import SessionView
from detector.core.sessions import SessionTracker
from detector.core.taxonomy import SessionKind
from tests.conftest import CLOUDTRAIL, DATASETS, read_jsonl

TABLE = AgentMarkerTable(DEFAULT_MARKERS)
INVICTUS = "invictus_aws_dataset"
BERT_JAN = "arn:aws:iam::123837392027:user/bert-jan"
INSTANCE_SESSION = re.compile(r"^i-[0-9a-fA-F]+$")


def load(dataset: str) -> list[tuple[dict[str, Any], CloudTrailEvent]]:
    return [(raw, parse_record(raw)) for raw in read_jsonl(CLOUDTRAIL / dataset / "events.jsonl")]


def attribute(
    pairs: list[tuple[dict[str, Any], CloudTrailEvent]],
) -> tuple[SessionTracker, list[str]]:
    """Run the events through one tracker; the session id of each event, in input order."""
    tracker = SessionTracker(TABLE)
    return tracker, [tracker.observe(event).session_id for _, event in pairs]


def final(tracker: SessionTracker, session_id: str) -> SessionView:
    view = tracker.get(session_id)
    assert view is not None
    return view


@pytest.fixture(scope="module")
def invictus() -> list[tuple[dict[str, Any], CloudTrailEvent]]:
    return load(INVICTUS)


def identity(raw: dict[str, Any]) -> dict[str, Any]:
    return raw.get("userIdentity") or {}


def test_access_keys_group_into_sessions(invictus: Any) -> None:
    _, ids = attribute(invictus)
    by_key: dict[str, set[str]] = defaultdict(set)
    principals: dict[str, set[str]] = defaultdict(set)
    for (raw, _), session_id in zip(invictus, ids, strict=True):
        key = identity(raw).get("accessKeyId")
        if key:
            by_key[key].add(session_id)
            principals[key].add(identity(raw).get("principalId") or "")
    assert len(by_key) == 133
    # The capture never shows one key under two principals, so key -> session is 1:1 here.
    assert all(len(p) == 1 for p in principals.values())
    assert all(len(s) == 1 for s in by_key.values())
    assert len({next(iter(s)) for s in by_key.values()}) == 133


def test_principal_arn_is_the_callers_arn(invictus: Any) -> None:
    tracker, ids = attribute(invictus)
    arns: dict[str, set[str]] = defaultdict(set)
    for (raw, _), session_id in zip(invictus, ids, strict=True):
        if identity(raw).get("accessKeyId"):
            arns[session_id].add(identity(raw).get("arn") or "")
    for session_id, seen in arns.items():
        assert len(seen) == 1
        assert final(tracker, session_id).principal_arn == next(iter(seen))


def test_kinds(invictus: Any) -> None:
    tracker, ids = attribute(invictus)
    checked: dict[str, int] = defaultdict(int)
    for (raw, _), session_id in zip(invictus, ids, strict=True):
        ui = identity(raw)
        issuer = ((ui.get("sessionContext") or {}).get("sessionIssuer") or {}).get("userName") or ""
        arn = ui.get("arn") or ""
        view = final(tracker, session_id)
        # Rule: the IAM users bert-jan and benjamin are people.
        if ui.get("type") == "IAMUser" and ui.get("userName") in ("bert-jan", "benjamin"):
            assert view.kind is SessionKind.HUMAN, raw["eventID"]
            assert view.human == ui["userName"]
            checked["iam-user"] += 1
        # Rule: a service-linked role (AWSServiceRoleFor*) session is a service.
        if issuer.startswith("AWSServiceRoleFor"):
            assert view.kind is SessionKind.SERVICE, raw["eventID"]
            checked["service-linked"] += 1
        # Rule: a role session named after an EC2 instance id is the instance's role.
        if ui.get("type") == "AssumedRole" and INSTANCE_SESSION.match(arn.rsplit("/", 1)[-1]):
            assert view.kind is SessionKind.SERVICE, raw["eventID"]
            checked["instance"] += 1
        # Rule: userIdentity.type AWSService is a service.
        if ui.get("type") == "AWSService":
            assert view.kind is SessionKind.SERVICE, raw["eventID"]
            checked["aws-service"] += 1
        # No event of this capture comes from an AI agent.
        assert view.kind is not SessionKind.AGENT
    assert checked["iam-user"] == 2747
    assert checked["service-linked"] == 6
    assert checked["instance"] == 23
    assert checked["aws-service"] == 34


def _minted_by(pairs: Any, caller_arn: str) -> dict[str, str]:
    """Keys minted by successful AssumeRole calls of `caller_arn`: new key -> the call's eventID."""
    minted = {}
    for raw, _ in pairs:
        if (
            raw["eventName"] == "AssumeRole"
            and not raw.get("errorCode")
            and identity(raw).get("arn") == caller_arn
        ):
            minted[raw["responseElements"]["credentials"]["accessKeyId"]] = raw["eventID"]
    return minted


@pytest.mark.parametrize("order", ["delivered", "reversed"])
def test_role_sessions_minted_by_bert_jan(invictus: Any, order: str) -> None:
    # Reversed, every role session is seen before the AssumeRole that minted it.
    pairs = invictus if order == "delivered" else invictus[::-1]
    tracker, ids = attribute(pairs)
    session_of = {raw["eventID"]: sid for (raw, _), sid in zip(pairs, ids, strict=True)}
    minted = _minted_by(pairs, BERT_JAN)
    used = {
        identity(raw)["accessKeyId"]: session_of[raw["eventID"]]
        for raw, _ in pairs
        if identity(raw).get("accessKeyId") in minted
    }
    # The capture holds 10 successful AssumeRole calls by bert-jan; 5 of the keys are used.
    assert len(minted) == 10
    assert len(used) == 5
    for key, session_id in used.items():
        view = final(tracker, session_id)
        assert view.root_principal_arn == BERT_JAN
        assert view.parent_session_id == session_of[minted[key]]
        assert view.human == "bert-jan"
        assert view.kind is SessionKind.HUMAN


def test_instance_role_credentials_minted_by_ec2(invictus: Any) -> None:
    tracker, ids = attribute(invictus)
    # Rule: AssumeRole calls made by the EC2 service mint instance-role credentials.
    minted = {
        raw["responseElements"]["credentials"]["accessKeyId"]
        for raw, _ in invictus
        if raw["eventName"] == "AssumeRole"
        and not raw.get("errorCode")
        and identity(raw).get("invokedBy") == "ec2.amazonaws.com"
    }
    seen = 0
    for (raw, _), session_id in zip(invictus, ids, strict=True):
        if identity(raw).get("accessKeyId") in minted:
            view = final(tracker, session_id)
            assert view.kind is SessionKind.SERVICE
            assert view.parent_session_id is not None
            seen += 1
    assert seen == 23


def test_stratus_federation_and_identity_center() -> None:
    pairs = load("stratus_detonation_logs")
    tracker, ids = attribute(pairs)
    checked = 0
    for (raw, _), session_id in zip(pairs, ids, strict=True):
        ui = identity(raw)
        issuer = (ui.get("sessionContext") or {}).get("sessionIssuer") or {}
        view = final(tracker, session_id)
        # Rule: a federated user's root is the IAM user that asked for the federation token.
        if ui.get("type") == "FederatedUser":
            assert view.root_principal_arn == issuer["arn"]
            assert view.kind is SessionKind.HUMAN
            checked += 1
        # Rule: an AWSReservedSSO_* role session is the person named by the session name.
        if (issuer.get("userName") or "").startswith("AWSReservedSSO_"):
            assert view.kind is SessionKind.HUMAN
            assert view.human == ui["principalId"].split(":", 1)[1]
            checked += 1
    assert checked == 5


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_runs_and_round_trips(dataset: str) -> None:
    pairs = load(dataset)
    tracker, ids = attribute(pairs)
    assert 0 < len(tracker) <= len(pairs)
    assert all(re.fullmatch(r"ses-[0-9a-f]{16}", i) for i in ids)
    restored = SessionTracker.restore(json.loads(json.dumps(tracker.snapshot())), TABLE)
    for session_id in set(ids):
        before, after = final(tracker, session_id), final(restored, session_id)
        assert after == before
        assert dict(after.tags) == dict(before.tags)
