"""Bursts of denied calls per session, counted in event time.

CloudTrail arrives minutes late and out of order, so the window is measured between event
times, never against the clock: the same input gives the same bursts in replay and live.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from detector.core.timestamps import iso_instant


class DeniedBurstDetector:
    """Reports a session once when `threshold` denied calls fall within `window`.

    After a report the session is quiet until its denied calls stop for a whole window.
    """

    def __init__(self, *, threshold: int, window_seconds: int) -> None:
        self.threshold = threshold
        self.window = timedelta(seconds=window_seconds)
        self._times: dict[str, list[datetime]] = {}
        self._reported_until: dict[str, datetime] = {}

    def observe(self, session_id: str, at: datetime) -> int | None:
        """Record one denied call; return the count in the window when a burst starts."""
        times = self._times.setdefault(session_id, [])
        bisect.insort(times, at)
        newest = times[-1]
        cutoff = newest - self.window
        # Drop what fell out of the window; times stay sorted despite late arrivals.
        del times[: bisect.bisect_left(times, cutoff)]
        quiet_until = self._reported_until.get(session_id)
        if quiet_until is not None:
            if at <= quiet_until + self.window:
                self._reported_until[session_id] = max(quiet_until, at)
                return None
            del self._reported_until[session_id]
        if len(times) >= self.threshold:
            self._reported_until[session_id] = newest
            return len(times)
        return None

    def forget(self, session_id: str) -> None:
        self._times.pop(session_id, None)
        self._reported_until.pop(session_id, None)

    # The parts of `snapshot` kept per session (see core/state_delta.py).
    session_collections = ("times", "reported_until")

    def snapshot(self) -> dict[str, Any]:
        return {
            "times": {k: [iso_instant(t) for t in v] for k, v in self._times.items() if v},
            "reported_until": {k: iso_instant(v) for k, v in self._reported_until.items()},
        }

    def shared_snapshot(self) -> dict[str, Any]:
        return {"times": {}, "reported_until": {}}

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        """The session's entries in `snapshot`'s collections (absent where it has none)."""
        found: dict[str, Any] = {}
        times = self._times.get(session_id)
        if times:
            found["times"] = list(times)  # times as they are: `encode_row` writes them
        until = self._reported_until.get(session_id)
        if until is not None:
            found["reported_until"] = until
        return found

    def restore(self, data: Mapping[str, Any]) -> None:
        self._times = {
            k: [datetime.fromisoformat(t) for t in v] for k, v in data.get("times", {}).items()
        }
        self._reported_until = {
            k: datetime.fromisoformat(v) for k, v in data.get("reported_until", {}).items()
        }
