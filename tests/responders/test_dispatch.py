"""The dispatcher on moto IAM: journal, guardrails, dry runs, failures and a restart."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from detector.core import revocation_policy as rp
from detector.core.findings import Response
from detector.errors import StateError
from detector.metrics import Metrics
from detector.responders.approval import ApprovalState, Release
from detector.responders.base import ResponderError
from detector.responders.dispatch import Dispatcher, RetryPolicy
from detector.responders.revoke_session import RevokeSessionResponder, RevokeSessionSettings
from detector.state.sqlite import SqliteStateStore
from tests.moto_aws import REGION
from tests.responders.conftest import ACCOUNT, T0, Iam, agent_response, set_auth

pytestmark = pytest.mark.integration
FAST = RetryPolicy(attempts=3, first_seconds=0.01, max_seconds=0.02)


class Sink:
    def __init__(self) -> None:
        self.records: list[Mapping[str, Any]] = []

    async def __call__(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.records.extend(records)


def revoker(endpoint: str, **settings: Any) -> RevokeSessionResponder:
    options: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region": REGION,
        "allow_accounts": (ACCOUNT,),
        "allow_roles": (f"arn:aws:iam::{ACCOUNT}:role/Agent*",),
    }
    options.update(settings)
    return RevokeSessionResponder("revoke-session", RevokeSessionSettings(**options))


def dispatcher(
    store: SqliteStateStore, responders: list[Any], *, enabled: bool = True, **kw: Any
) -> tuple[Dispatcher, Sink, Metrics]:
    sink = Sink()
    metrics = Metrics(runtime_collectors=False)
    built = Dispatcher(
        responders, store, enabled=enabled, emit=sink, metrics=metrics, retry=FAST, **kw
    )
    return built, sink, metrics


def outcome_count(metrics: Metrics, outcome: str, dry_run: str = "false") -> float:
    value = metrics.registry.get_sample_value(
        "trailguard_response_outcomes_total",
        {"action": "revoke-session", "outcome": outcome, "dry_run": dry_run},
    )
    return value or 0.0


async def test_a_revocation_is_journaled_timed_and_sent_to_the_sinks(
    moto_iam: Iam, store: SqliteStateStore
) -> None:
    role = moto_iam.role("AgentRole")
    user_id = moto_iam.session(role, "agent-6f1c")
    responder = revoker(moto_iam.endpoint)
    dispatch, sink, metrics = dispatcher(store, [responder])
    await dispatch.open()
    arrival = T0 + timedelta(minutes=4)

    journaled = await dispatch.handle(
        [agent_response(role, "agent-6f1c", user_id)], arrival=arrival
    )

    assert [e.outcome for e in journaled] == ["decided", "applied"]
    applied = store.journal_entries(session_id="ses-agent-1")[-1]
    assert applied.detail["policy"] == moto_iam.policy("AgentRole", rp.POLICY_NAME)
    assert applied.detail["seconds_from_event"] > 0
    assert applied.detail["seconds_from_arrival"] > applied.detail["seconds_from_event"]
    assert sink.records[-1]["outcome"] == "applied" and sink.records[-1]["alert"] is False
    assert outcome_count(metrics, "applied") == 1
    histogram = metrics.registry.get_sample_value(
        "trailguard_time_to_revoke_seconds_count",
        {"action": "revoke-session", "since": "arrival"},
    )
    assert histogram == 1

    # Redelivered after a crash: the journal already holds the outcome, nothing happens.
    assert await dispatch.handle([agent_response(role, "agent-6f1c", user_id)]) == []
    assert len(store.journal_entries(session_id="ses-agent-1")) == 2


async def test_dry_run_is_journaled_without_any_aws_call(
    store: SqliteStateStore, closed_port: int
) -> None:
    # The endpoint is closed: any AWS call would fail the test.
    responder = revoker(f"http://127.0.0.1:{closed_port}")
    dispatch, sink, metrics = dispatcher(store, [responder], enabled=False)
    await dispatch.open()
    role = {"RoleName": "AgentRole", "Arn": f"arn:aws:iam::{ACCOUNT}:role/AgentRole"}
    response = agent_response(role, "agent-6f1c", "AROAX:agent-6f1c", dry_run=True)
    outside = agent_response(
        {"RoleName": "Admin", "Arn": f"arn:aws:iam::{ACCOUNT}:role/Admin"},
        "agent-1",
        "AROAY:agent-1",
        dry_run=True,
        session_id="ses-2",
    )

    journaled = await dispatch.handle([response, outside])

    assert [e.outcome for e in journaled] == ["decided", "dry_run", "decided", "refused"]
    assert "would be refused: role" in journaled[-1].reason
    assert sink.records == []  # dry runs are the journal's alone
    assert outcome_count(metrics, "dry_run", "true") == 1


class CountedStore(SqliteStateStore):
    """The real store, counting journal writes and failing the next ones when told to."""

    writes = 0
    fail = 0

    def journal(self, entries: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise StateError("disk full")
        self.writes += 1
        super().journal(entries)


async def test_a_batch_of_dry_runs_is_journaled_in_one_write_and_whole_or_not_at_all(
    tmp_path: Any, closed_port: int
) -> None:
    role = {"RoleName": "AgentRole", "Arn": f"arn:aws:iam::{ACCOUNT}:role/AgentRole"}
    responses = [
        agent_response(role, f"agent-{n}", f"AROAX:agent-{n}", dry_run=True, session_id=f"s{n}")
        for n in range(40)
    ]
    with CountedStore(tmp_path / "state.db") as store:
        dispatch, _, metrics = dispatcher(
            store, [revoker(f"http://127.0.0.1:{closed_port}")], enabled=False
        )
        # The journal write fails: nothing of the batch is journaled or counted.
        store.fail = 1
        with pytest.raises(StateError, match="disk full"):
            await dispatch.handle(responses)
        assert store.journal_entries() == []
        assert outcome_count(metrics, "dry_run", "true") == 0

        # Delivered again, with one response twice: each once, in one write.
        journaled = await dispatch.handle([*responses, responses[0]])
        assert store.writes == 1
        assert len(journaled) == 80
        assert [e.outcome for e in store.journal_entries(session_id="s7")] == [
            "decided",
            "dry_run",
        ]
        assert outcome_count(metrics, "dry_run", "true") == 40

        # And again: already journaled, so nothing is written or counted twice.
        assert await dispatch.handle(responses) == []
        assert store.writes == 1
        assert outcome_count(metrics, "dry_run", "true") == 40


async def test_outside_the_guardrails_is_refused_and_alerts(
    moto_iam: Iam, store: SqliteStateStore
) -> None:
    admin = moto_iam.role("Admin")
    agent_role = moto_iam.role("AgentRole")
    glass = moto_iam.role("AgentBreakGlass")
    responder = revoker(
        moto_iam.endpoint,
        break_glass=(f"arn:aws:iam::{ACCOUNT}:role/AgentBreakGlass",),
        max_per_hour=1,
    )
    dispatch, sink, metrics = dispatcher(store, [responder])
    await dispatch.open()
    responses = [
        agent_response(admin, "aa", moto_iam.session(admin, "aa"), session_id="s-admin"),
        agent_response(glass, "gg", moto_iam.session(glass, "gg"), session_id="s-glass"),
        agent_response(
            agent_role, "xx", moto_iam.session(agent_role, "xx"), session_id="s-other-account"
        ),
        agent_response(agent_role, "bb", moto_iam.session(agent_role, "bb"), session_id="s-ok"),
        agent_response(agent_role, "cc", moto_iam.session(agent_role, "cc"), session_id="s-rate"),
    ]
    from dataclasses import replace

    responses[2] = replace(responses[2], account_id="999999999999")

    journaled = await dispatch.handle(responses)

    outcomes = [(e.session_id, e.outcome) for e in journaled if e.outcome != "decided"]
    assert outcomes == [
        ("s-admin", "refused"),
        ("s-glass", "refused"),
        ("s-other-account", "refused"),
        ("s-ok", "applied"),
        ("s-rate", "refused"),
    ]
    reasons = [e.reason for e in journaled if e.outcome == "refused"]
    assert "not in allow_roles" in reasons[0]
    assert "break-glass" in reasons[1]
    assert "999999999999 is not in allow_accounts" in reasons[2]
    assert "rate limit" in reasons[3]
    alerts = [r for r in sink.records if r["alert"]]
    assert [r["session_id"] for r in alerts] == ["s-admin", "s-glass", "s-other-account", "s-rate"]
    assert outcome_count(metrics, "refused") == 4
    assert moto_iam.iam.list_role_policies(RoleName="Admin")["PolicyNames"] == []


async def test_the_detectors_own_identity_is_never_revoked(
    moto_iam: Iam, store: SqliteStateStore
) -> None:
    # moto's caller is arn:aws:sts::123456789012:user/moto: make a response that names it.
    role = moto_iam.role("AgentRole")
    responder = revoker(moto_iam.endpoint)
    dispatch, _, _ = dispatcher(store, [responder])
    await dispatch.open()
    from dataclasses import replace

    mine = replace(
        agent_response(role, "xx", moto_iam.session(role, "xx")),
        principal=f"arn:aws:sts::{ACCOUNT}:user/moto",
    )

    journaled = await dispatch.handle([mine])

    assert journaled[-1].outcome == "refused"
    assert "own identity" in journaled[-1].reason


async def test_access_denied_is_failed_at_once_and_alerted(
    moto_iam: Iam, store: SqliteStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = moto_iam.role("AgentRole")
    user_id = moto_iam.session(role, "agent-6f1c")
    moto_iam.iam.create_user(UserName="limited")
    allow = {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "iam:GetRole"], "Resource": "*"}
    moto_iam.iam.put_user_policy(
        UserName="limited",
        PolicyName="ReadOnly",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    key = moto_iam.iam.create_access_key(UserName="limited")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    responder = revoker(moto_iam.endpoint)
    dispatch, sink, metrics = dispatcher(store, [responder])
    set_auth(moto_iam.endpoint, 0)
    try:
        await dispatch.open()
        journaled = await dispatch.handle([agent_response(role, "agent-6f1c", user_id)])
    finally:
        set_auth(moto_iam.endpoint, float("inf"))

    failed = journaled[-1]
    assert failed.outcome == "failed"
    assert failed.detail["code"] == "AccessDenied"
    assert failed.detail["attempts"] == 1 and failed.detail["retriable"] is False
    assert sink.records[-1]["alert"] is True
    assert outcome_count(metrics, "failed") == 1


async def test_an_unreachable_endpoint_is_retried_then_raised_and_done_after_a_restart(
    moto_iam: Iam, store: SqliteStateStore, closed_port: int
) -> None:
    role = moto_iam.role("AgentRole")
    user_id = moto_iam.session(role, "agent-6f1c")
    response = agent_response(role, "agent-6f1c", user_id)
    down = revoker(f"http://127.0.0.1:{closed_port}")
    dispatch, sink, _ = dispatcher(store, [down])

    with pytest.raises(ResponderError) as raised:
        await dispatch.handle([response])

    assert raised.value.retriable is True
    failed = store.journal_entries(session_id="ses-agent-1")[-1]
    assert failed.outcome == "failed" and failed.detail["attempts"] == FAST.attempts
    assert sink.records[-1]["alert"] is True

    # Restarted with the endpoint back: the redelivered response is carried out.
    restarted, _, _ = dispatcher(store, [revoker(moto_iam.endpoint)])
    await restarted.open()
    journaled = await restarted.handle([response])

    assert [e.outcome for e in journaled] == ["decided", "applied"]
    outcomes = [e.outcome for e in store.journal_entries(session_id="ses-agent-1")]
    assert outcomes == ["decided", "failed", "decided", "applied"]


class HoldingGate:
    def __init__(self) -> None:
        self.release: Release | None = None

    async def check(self, response: Response) -> ApprovalState:
        return ApprovalState.PENDING

    def on_release(self, release: Release) -> None:
        self.release = release


async def test_a_held_response_waits_for_the_gate_and_acts_when_approved(
    moto_iam: Iam, store: SqliteStateStore
) -> None:
    role = moto_iam.role("AgentRole")
    user_id = moto_iam.session(role, "agent-6f1c")
    response = agent_response(role, "agent-6f1c", user_id)
    gate = HoldingGate()
    dispatch, _, _ = dispatcher(store, [revoker(moto_iam.endpoint)], gate=gate)
    await dispatch.open()

    journaled = await dispatch.handle([response])
    assert [e.outcome for e in journaled] == ["decided", "held"]
    assert moto_iam.iam.list_role_policies(RoleName="AgentRole")["PolicyNames"] == []
    assert await dispatch.handle([response]) == []  # redelivered while held

    assert gate.release is not None
    await gate.release(response, ApprovalState.APPROVED)
    outcomes = [e.outcome for e in store.journal_entries(session_id="ses-agent-1")]
    assert outcomes == ["decided", "held", "applied"]
    assert moto_iam.iam.list_role_policies(RoleName="AgentRole")["PolicyNames"] == [rp.POLICY_NAME]


async def test_a_redelivery_retries_only_the_responder_that_failed(
    moto_iam: Iam, store: SqliteStateStore, closed_port: int
) -> None:
    from detector.responders.role_sessions import (
        RevokeRoleSessionsResponder,
        RevokeRoleSessionsSettings,
    )

    role = moto_iam.role("AgentOnly")
    response = agent_response(role, "agent-6f1c", moto_iam.session(role, "agent-6f1c"))

    def role_wide(endpoint: str) -> RevokeRoleSessionsResponder:
        settings = RevokeRoleSessionsSettings(
            endpoint_url=endpoint,
            region=REGION,
            allow_accounts=(ACCOUNT,),
            allow_roles=("*",),
            roles=(role["Arn"],),
        )
        return RevokeRoleSessionsResponder("role-wide", settings)

    first, _, _ = dispatcher(
        store, [revoker(moto_iam.endpoint), role_wide(f"http://127.0.0.1:{closed_port}")]
    )
    with pytest.raises(ResponderError):
        await first.handle([response])
    second, _, _ = dispatcher(store, [revoker(moto_iam.endpoint), role_wide(moto_iam.endpoint)])
    journaled = await second.handle([response])

    assert [(e.responder, e.outcome) for e in journaled] == [
        (None, "decided"),
        ("role-wide", "applied"),
    ]
    assert await second.handle([response]) == []


class ScriptedGate(HoldingGate):
    def __init__(self, *states: ApprovalState) -> None:
        super().__init__()
        self.states = list(states)

    async def check(self, response: Response) -> ApprovalState:
        return self.states.pop(0)


async def test_a_held_response_redelivered_after_approval_is_carried_out(
    moto_iam: Iam, store: SqliteStateStore
) -> None:
    role = moto_iam.role("AgentRole")
    response = agent_response(role, "agent-6f1c", moto_iam.session(role, "agent-6f1c"))
    gate = ScriptedGate(ApprovalState.PENDING, ApprovalState.PENDING, ApprovalState.APPROVED)
    dispatch, _, _ = dispatcher(store, [revoker(moto_iam.endpoint)], gate=gate)
    await dispatch.open()

    assert [e.outcome for e in await dispatch.handle([response])] == ["decided", "held"]
    assert await dispatch.handle([response]) == []
    assert [e.outcome for e in await dispatch.handle([response])] == ["applied"]


async def test_a_denied_approval_is_refused_and_alerts(
    moto_iam: Iam, store: SqliteStateStore
) -> None:
    role = moto_iam.role("AgentRole")
    response = agent_response(role, "agent-6f1c", moto_iam.session(role, "agent-6f1c"))
    dispatch, sink, _ = dispatcher(
        store, [revoker(moto_iam.endpoint)], gate=ScriptedGate(ApprovalState.DENIED)
    )

    journaled = await dispatch.handle([response])

    assert [e.outcome for e in journaled] == ["decided", "refused"]
    assert journaled[-1].reason == "approval denied" and sink.records[-1]["alert"] is True
    assert moto_iam.iam.list_role_policies(RoleName="AgentRole")["PolicyNames"] == []


async def test_the_role_assumed_in_other_accounts_is_never_revoked(moto_iam: Iam) -> None:
    responder = revoker(
        moto_iam.endpoint,
        assume_role_arn={"*": "arn:aws:iam::{account}:role/TrailGuardResponder"},
        allow_accounts=("*",),
        allow_roles=("*",),
    )
    await responder.open()
    role = {
        "RoleName": "TrailGuardResponder",
        "Arn": "arn:aws:iam::222233334444:role/TrailGuardResponder",
    }
    response = agent_response(role, "trailguard-responder", "AROAZ:trailguard-responder")
    from dataclasses import replace

    response = replace(response, account_id="222233334444")
    refusal = responder.guardrails.refusal(
        response, own_identities=responder.own_arns, applied_last_hour=0
    )
    assert refusal is not None and "own identity" in refusal
