"""The eventID dedup window and the denied-burst detector (event-time windows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detector.core.bursts import DeniedBurstDetector
from detector.core.dedup import EventIdWindow

T0 = datetime(2025, 12, 8, 10, 0, tzinfo=UTC)


def test_dedup_window_remembers_and_forgets_oldest() -> None:
    window = EventIdWindow(capacity=3)
    assert [window.seen(i) for i in "abca"] == [False, False, False, True]
    assert window.seen("d") is False  # evicts "a"
    assert window.seen("a") is False
    assert len(window) == 3


def test_dedup_window_snapshot_round_trip() -> None:
    window = EventIdWindow(capacity=10)
    for i in "xyz":
        window.seen(i)
    other = EventIdWindow(capacity=2)
    other.restore(window.snapshot())
    assert other.seen("z") and other.seen("y") and not other.seen("x")


def test_dedup_window_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError, match="positive"):
        EventIdWindow(capacity=0)


def test_burst_reported_once_at_threshold() -> None:
    bursts = DeniedBurstDetector(threshold=3, window_seconds=60)
    results = [bursts.observe("s", T0 + timedelta(seconds=i * 10)) for i in range(6)]
    assert results == [None, None, 3, None, None, None]


def test_burst_needs_calls_inside_one_window() -> None:
    bursts = DeniedBurstDetector(threshold=3, window_seconds=60)
    results = [bursts.observe("s", T0 + timedelta(seconds=i * 40)) for i in range(5)]
    assert results == [None, None, None, None, None]


def test_burst_counts_late_arrivals_in_event_time() -> None:
    bursts = DeniedBurstDetector(threshold=3, window_seconds=60)
    assert bursts.observe("s", T0 + timedelta(seconds=50)) is None
    assert bursts.observe("s", T0 + timedelta(seconds=55)) is None
    # Arrives last but happened first; still inside the window.
    assert bursts.observe("s", T0 + timedelta(seconds=5)) == 3


def test_burst_rearms_after_a_quiet_window_and_sessions_are_separate() -> None:
    bursts = DeniedBurstDetector(threshold=2, window_seconds=60)
    assert bursts.observe("a", T0) is None
    assert bursts.observe("b", T0) is None
    assert bursts.observe("a", T0 + timedelta(seconds=1)) == 2
    assert bursts.observe("a", T0 + timedelta(seconds=30)) is None
    later = T0 + timedelta(minutes=10)
    assert bursts.observe("a", later) is None
    assert bursts.observe("a", later + timedelta(seconds=1)) == 2


def test_burst_snapshot_round_trip() -> None:
    bursts = DeniedBurstDetector(threshold=3, window_seconds=60)
    bursts.observe("s", T0)
    bursts.observe("s", T0 + timedelta(seconds=1))
    restored = DeniedBurstDetector(threshold=3, window_seconds=60)
    restored.restore(bursts.snapshot())
    assert restored.observe("s", T0 + timedelta(seconds=2)) == 3
