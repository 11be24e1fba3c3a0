"""How the pipeline drives learned baselines: order, the learning cut-off, drains, state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.config import Settings, SeveritySettings
from detector.core.findings import Finding
from detector.core.policy import EventContext, make_finding
from detector.core.taxonomy import Severity
from detector.wiring import build_pipeline
from tests.unit.test_pipeline import SCOPES, _agent_event


@dataclass
class _Recording:
    """Counts what it learned from; flags the events named in `flag`; drains one finding."""

    name: str = "recording"
    flag: frozenset[str] = frozenset()
    learned: list[str] = field(default_factory=list)
    seen_before: list[tuple[str, ...]] = field(default_factory=list)
    pending: list[Finding] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)

    def observe(
        self, ctx: EventContext, findings: Sequence[Finding], *, learn: bool
    ) -> list[Finding]:
        self.seen_before.append(tuple(f.kind for f in findings))
        if learn and ctx.event.event_id not in self.flag:
            self.learned.append(ctx.event.event_id)
        made = make_finding(
            ctx, kind="novel-action", severity=Severity.HIGH, classification=None, reason="new"
        )
        self.pending.append(made)
        return [made] if ctx.event.event_id in self.flag else []

    def drain(self) -> list[Finding]:
        drained, self.pending = self.pending, []
        return drained

    def forget(self, session_id: str) -> None:
        self.forgotten.append(session_id)

    session_collections = ()

    def snapshot(self) -> dict[str, Any]:
        return {"learned": list(self.learned)}

    def shared_snapshot(self) -> dict[str, Any]:
        return self.snapshot()

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        return {}

    def restore(self, data: Mapping[str, Any]) -> None:
        self.learned = list(data["learned"])


def _pipeline(tmp_path: Path, baseline: _Recording, settings: Settings | None = None) -> Any:
    path = tmp_path / "scopes.yaml"
    path.write_text(SCOPES)
    pipeline = build_pipeline(settings or Settings(), scopes_path=path)
    pipeline.baselines = (baseline,)
    return pipeline


def test_a_baseline_sees_earlier_findings_and_does_not_learn_from_flagged_events(
    tmp_path: Path,
) -> None:
    baseline = _Recording(flag=frozenset({"e2"}))
    pipeline = _pipeline(tmp_path, baseline)
    ok = pipeline.process(
        _agent_event("e1", "PutObject", requestParameters={"bucketName": "docs-site", "key": "a"})
    )
    flagged_by_scope = pipeline.process(
        _agent_event("e3", "DeleteBucket", requestParameters={"bucketName": "docs-site"})
    )
    flagged_by_itself = pipeline.process(
        _agent_event("e2", "PutObject", requestParameters={"bucketName": "docs-site", "key": "b"})
    )
    assert ok.findings == ()
    assert "out-of-scope-action" in baseline.seen_before[1]
    assert [f.kind for f in flagged_by_itself.findings] == ["novel-action"]
    assert "novel-action" in {a.kind for a in flagged_by_itself.alerts}
    assert flagged_by_scope.findings and baseline.learned == ["e1"]


def test_drained_findings_are_decided_and_a_drain_with_nothing_is_empty(tmp_path: Path) -> None:
    baseline = _Recording()
    # Alone a novel-action is low and opens no alert; at medium it does.
    settings = Settings(severity=SeveritySettings(novel_action=Severity.MEDIUM))
    pipeline = _pipeline(tmp_path, baseline, settings)
    pipeline.process(
        _agent_event("e1", "PutObject", requestParameters={"bucketName": "docs-site", "key": "a"})
    )
    drained = pipeline.drain()
    assert [f.event_id for f in drained.findings] == ["e1"]
    assert [a.kind for a in drained.alerts] == ["novel-action"]
    assert pipeline.drain().findings == ()


def test_baseline_state_is_in_the_snapshot_and_forgotten_sessions_are_passed_on(
    tmp_path: Path,
) -> None:
    baseline = _Recording()
    pipeline = _pipeline(tmp_path, baseline)
    result = pipeline.process(
        _agent_event("e1", "PutObject", requestParameters={"bucketName": "docs-site", "key": "a"})
    )
    snapshot = pipeline.snapshot()
    assert snapshot["baselines"] == {"recording": {"learned": ["e1"]}}
    fresh = _Recording()
    restored = _pipeline(tmp_path, fresh)
    restored.restore(snapshot)
    assert fresh.learned == ["e1"]
    assert result.session is not None
    pipeline.evict_idle(result.event.event_time.replace(year=2030))
    assert baseline.forgotten == [result.session.session_id]


def test_a_snapshot_from_before_baselines_restores(tmp_path: Path) -> None:
    old = _pipeline(tmp_path, _Recording()).snapshot()
    del old["baselines"]
    fresh = _Recording(learned=["kept"])
    _pipeline(tmp_path, fresh).restore(old)
    assert fresh.learned == ["kept"]
