"""Replay drains the baselines every `drain_every` events and at the end; what it finds is
counted and handed on, and does not depend on the cadence."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from detector.config import Settings
from detector.core.learned import Drained
from detector.core.pipeline import Pipeline
from detector.replay import replay
from detector.sinks.jsonl import record_key, step_records
from detector.sources.files import expand
from detector.wiring import build_pipeline
from tests.baselines import RuleBaseline
from tests.scenario import DEMO, as_jsonl, incident

FLAGGED = frozenset({"cloudformation:DeleteStack"})


def _pipeline(baseline: RuleBaseline | None) -> Pipeline:
    return build_pipeline(
        Settings(),
        scopes_path=DEMO / "scopes.yaml",
        baselines=(lambda _: [baseline]) if baseline is not None else None,
    )


def _replay(tmp_path: Path, drain_every: int) -> tuple[Any, list[dict[str, Any]], list[int]]:
    path = tmp_path / "incident.jsonl"
    path.write_bytes(as_jsonl(incident()))
    files, _ = expand([str(path)])
    baseline = RuleBaseline(flag=FLAGGED, milestone=3)
    records: list[dict[str, Any]] = []
    drains: list[int] = []

    def on_drained(drained: Drained) -> None:
        drains.append(len(drained.findings))
        records.extend(step_records(drained))

    stats = replay(
        _pipeline(baseline),
        files,
        on_result=lambda result: records.extend(step_records(result)),
        on_reject=lambda *_: None,
        drain_every=drain_every,
        on_drained=on_drained,
    )
    assert not baseline.pending  # the end drains what is left
    return stats, records, drains


@pytest.mark.parametrize("drain_every", [1, 7, 10_000])
def test_the_cadence_changes_when_not_what(tmp_path: Path, drain_every: int) -> None:
    stats, records, drains = _replay(tmp_path, drain_every)
    _, reference, reference_drains = _replay(tmp_path, 10_000)
    assert Counter(record_key(r) for r in records) == Counter(record_key(r) for r in reference)
    assert sum(drains) == sum(reference_drains) == stats.kinds["anomalous-session"] == 5
    assert reference_drains == [5]  # one drain at the end
    if drain_every == 7:
        # The incident's 44 records: drains after 7, 14, ... 42 events and at the end,
        # each handing on only what it found.
        assert len(drains) > 1 and 0 not in drains


def test_drained_findings_are_in_the_summary(tmp_path: Path) -> None:
    stats, _, _ = _replay(tmp_path, 7)
    plain = _pipeline(None)
    path = tmp_path / "incident.jsonl"
    files, _ = expand([str(path)])
    without = replay(plain, files, on_result=lambda _: None, on_reject=lambda *_: None)
    assert stats.finding_count == without.finding_count + 5 + 1  # drained + one novel-action
    assert stats.flagged_events == without.flagged_events + 5  # the novel-action's event was
    assert stats.alerts > without.alerts
    severities = Counter(f.severity.label for e in stats.top_events() for f in e.findings)
    assert severities["critical"] > 0


def test_without_baselines_nothing_is_drained(tmp_path: Path) -> None:
    path = tmp_path / "incident.jsonl"
    path.write_bytes(as_jsonl(incident()))
    files, _ = expand([str(path)])
    drained: list[Drained] = []
    replay(
        _pipeline(None),
        files,
        on_result=lambda _: None,
        on_reject=lambda *_: None,
        drain_every=1,
        on_drained=drained.append,
    )
    assert drained == []
