"""`on_violation: approve`: the scope's violations decide a revocation that waits for a
second person, while other scopes' revocations do not wait."""

from __future__ import annotations

from pathlib import Path

import yaml

from detector.approvals.gate import StoreApprovalGate
from detector.approvals.settings import ApprovalSettings, required_scopes
from detector.config import Settings
from detector.core.parse import parse_record
from detector.responders.approval import ApprovalState
from detector.scope_file import load_scopes
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident


async def test_an_approve_scope_holds_its_revocation(tmp_path: Path) -> None:
    document = yaml.safe_load((DEMO / "scopes.yaml").read_text())
    (fix,) = [s for s in document["scopes"] if s["name"] == "ce-4821-fix"]
    fix["on_violation"] = "approve"
    scopes_path = tmp_path / "scopes.yaml"
    scopes_path.write_text(yaml.safe_dump(document))
    scopes = load_scopes(scopes_path)

    pipeline = build_pipeline(Settings(), scopes_path=scopes_path)
    responses = [r for raw in incident() for r in pipeline.process(parse_record(raw)).responses]
    assert [(r.action, r.scope, r.agent) for r in responses] == [
        ("revoke-session", "ce-4821-fix", "kiro")
    ]

    wanted = required_scopes({s.name: s.on_violation for s in scopes.scopes})
    assert wanted == frozenset({"ce-4821-fix"})
    with SqliteStateStore(tmp_path / "state.db") as store:
        gate = StoreApprovalGate(store, ApprovalSettings(), required=False, scopes=wanted)
        assert await gate.check(responses[0]) is ApprovalState.PENDING
        elsewhere = StoreApprovalGate(
            store, ApprovalSettings(), required=False, scopes=frozenset({"docs-site-refresh"})
        )
        assert await elsewhere.check(responses[0]) is ApprovalState.NOT_REQUIRED
