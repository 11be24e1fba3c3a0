"""Collecting training history in process: the window, the cut-off and what is counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from detector.baseline.train import KEEP_ALL, CollectStats, read_history
from detector.config import Settings
from detector.core.taxonomy import Severity
from tests.baseline.history import DEPLOYER, START, call, history, write_jsonl

BACKDOOR = call(
    DEPLOYER,
    f"{DEPLOYER}-run-2",
    "iam:CreateUser",
    START + timedelta(days=2, hours=15),
    params={"userName": "backdoor"},
)


def test_events_with_findings_at_or_above_the_cut_off_are_counted_and_left_out(
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "trail.jsonl", [*history(days=4), BACKDOOR])
    stats = CollectStats()
    kept = read_history([str(path)], settings=Settings(), stats=stats)
    assert stats.excluded == 1 and stats.kept == len(kept) == len(history(days=4))
    assert BACKDOOR["eventID"] not in {e.ctx.event.event_id for e in kept}
    everything = read_history([str(path)], settings=Settings(), exclude_at=KEEP_ALL)
    [backdoor] = [e for e in everything if e.ctx.event.event_id == BACKDOOR["eventID"]]
    assert max(f.severity for f in backdoor.findings) >= Severity.MEDIUM
    assert len(read_history([str(path)], settings=Settings(), exclude_at=Severity.HIGH)) == len(
        everything
    )


def test_the_window_is_since_inclusive_until_exclusive(tmp_path: Path) -> None:
    records = history(days=4)
    path = write_jsonl(tmp_path / "trail.jsonl", records)
    since, until = START + timedelta(days=1), START + timedelta(days=3)
    stats = CollectStats()
    kept = read_history([str(path)], settings=Settings(), since=since, until=until, stats=stats)
    assert all(since <= e.ctx.event.event_time < until for e in kept)
    inside = [r for r in records if "2025-03-04" <= str(r["eventTime"]) < "2025-03-06"]
    assert len(kept) == len(inside) and stats.outside_window == len(records) - len(inside)
    window = stats.window()
    assert window.start is not None and window.start >= since.replace(tzinfo=UTC)
    assert window.end is not None and window.end < until
    assert datetime(2025, 3, 4, tzinfo=UTC) == since
