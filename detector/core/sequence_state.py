"""What the sequence patterns keep per session, bounded, and its plain-JSON form.

Every list is kept in event-time order and capped; past a cap the oldest entry goes. The
detector (`detector.core.sequences`) prunes by time; this module only keeps and serialises.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from detector.core.sequence_steps import Step

# Per-session caps.
MAX_ANCHORS = 32  # destroys, creates, blindings, grants and identity uses, each
MAX_WRITES = 64
MAX_READS = 256  # distinct read actions (the latest call of each)
MAX_DENIED = 64
MAX_BURSTS = 4
MAX_CREATED = 512  # resources the session created, remembered for the session's lifetime
MAX_RAISED = 256


@dataclass(slots=True)
class Burst:
    """Reconnaissance: calls that reached the threshold within the recon window."""

    start: datetime
    reached: datetime  # when the threshold was met; writes after this follow the burst
    end: datetime  # the last call that extended it
    sample: list[Step]  # the calls that reached the threshold
    spent: bool = False  # a write after it was already raised


@dataclass(slots=True)
class SessionState:
    """One session's steps as far as the patterns need them.

    high      the watermark: the latest event time seen in the session
    reads     the latest call of each read action, oldest first
    created   resource key (or "noun:<service>:<Noun>") -> first and last time the session
              created it; kept for the session's lifetime, so tearing down one's own set-up
              is recognised however long the set-up ran
    raised    sequence keys already raised -> the time of their first step
    """

    high: datetime
    identities: tuple[str, ...]
    first: Step | None = None
    destroys: list[Step] = field(default_factory=list)
    creates: list[Step] = field(default_factory=list)
    blinds: list[Step] = field(default_factory=list)
    grants: list[Step] = field(default_factory=list)
    writes: list[Step] = field(default_factory=list)
    denied: list[Step] = field(default_factory=list)
    calls: list[Step] = field(default_factory=list)  # steps that assume a role or sign in
    reads: OrderedDict[str, Step] = field(default_factory=OrderedDict)
    bursts: list[Burst] = field(default_factory=list)
    created: dict[str, list[datetime]] = field(default_factory=dict)
    raised: dict[str, datetime] = field(default_factory=dict)

    def mark(self, key: str, at: datetime) -> bool:
        """Record that a sequence was raised; False when it already was."""
        if key in self.raised:
            return False
        self.raised[key] = at
        while len(self.raised) > MAX_RAISED:
            del self.raised[next(iter(self.raised))]
        return True

    def remember_created(self, keys: tuple[str, ...], at: datetime) -> None:
        for key in keys:
            times = sorted({*self.created.pop(key, []), at})
            self.created[key] = [times[0], times[-1]] if len(times) > 1 else times
        while len(self.created) > MAX_CREATED:
            del self.created[next(iter(self.created))]

    def created_before(self, key: str, before: datetime, *, same_second: bool = False) -> bool:
        times = self.created.get(key)
        if not times:
            return False
        return times[0] <= before if same_second else times[0] < before

    def keep_read(self, step: Step) -> None:
        """The latest call of each read action is enough to count distinct reads."""
        current = self.reads.get(step.action)
        if current is not None and current.at > step.at:
            return
        self.reads.pop(step.action, None)
        if self.reads and next(reversed(self.reads.values())).at > step.at:
            ordered = sorted([*self.reads.items(), (step.action, step)], key=lambda kv: kv[1].at)
            self.reads.clear()
            self.reads.update(ordered)
        else:
            self.reads[step.action] = step
        while len(self.reads) > MAX_READS:
            self.reads.popitem(last=False)

    def burst_at(
        self, at: datetime, window: timedelta, *, distinct_reads: int, denied_calls: int
    ) -> Burst | None:
        """A new burst that a call at `at` completes; None when it completes none, or only
        extends a burst already judged. A burst is `distinct_reads` read actions or
        `denied_calls` denied calls within `window`."""
        for burst in self.bursts:
            if burst.start - window <= at <= burst.end + window:
                burst.start, burst.end = min(burst.start, at), max(burst.end, at)
                return None
        spans = [(at - window, at)]
        if at < self.high:  # a late call can also open a burst of calls seen after it
            spans.append((at, at + window))
        for start, end in spans:
            sample = self._burst_calls(start, end, distinct_reads, denied_calls)
            if sample is not None:
                burst = Burst(
                    start=sample[0].at, reached=sample[-1].at, end=sample[-1].at, sample=sample
                )
                self.bursts.append(burst)
                self.bursts.sort(key=lambda b: b.start)
                del self.bursts[:-MAX_BURSTS]
                return burst
        return None

    def _burst_calls(
        self, start: datetime, end: datetime, distinct_reads: int, denied_calls: int
    ) -> list[Step] | None:
        """The calls that make a burst within [start, end], oldest first, or None."""
        reads: list[Step] = []
        for read in reversed(self.reads.values()):  # newest first
            if read.at < start:
                break
            if read.at <= end:
                reads.append(read)
        if len(reads) >= distinct_reads:
            return sorted(reads, key=lambda s: s.at)[:distinct_reads]
        denied = between(self.denied, start, end)
        return denied[:denied_calls] if len(denied) >= denied_calls else None

    def to_dict(self) -> dict[str, Any]:
        def steps(items: list[Step]) -> list[list[Any]]:
            return [s.to_list() for s in items]

        return {
            "high": self.high.isoformat(),
            "identities": list(self.identities),
            "first": self.first.to_list() if self.first else None,
            "destroys": steps(self.destroys),
            "creates": steps(self.creates),
            "blinds": steps(self.blinds),
            "grants": steps(self.grants),
            "writes": steps(self.writes),
            "denied": steps(self.denied),
            "calls": steps(self.calls),
            "reads": steps(list(self.reads.values())),
            "bursts": [
                [_iso(b.start), _iso(b.reached), _iso(b.end), steps(b.sample), b.spent]
                for b in self.bursts
            ],
            "created": {k: [_iso(t) for t in v] for k, v in self.created.items()},
            "raised": {k: _iso(v) for k, v in self.raised.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionState:
        def steps(name: str) -> list[Step]:
            return [Step.from_list(s) for s in data.get(name, ())]

        first = data.get("first")
        return cls(
            high=datetime.fromisoformat(data["high"]),
            identities=tuple(data.get("identities", ())),
            first=Step.from_list(first) if first else None,
            destroys=steps("destroys"),
            creates=steps("creates"),
            blinds=steps("blinds"),
            grants=steps("grants"),
            writes=steps("writes"),
            denied=steps("denied"),
            calls=steps("calls"),
            reads=OrderedDict((s.action, s) for s in steps("reads")),
            bursts=[
                Burst(
                    start=datetime.fromisoformat(start),
                    reached=datetime.fromisoformat(reached),
                    end=datetime.fromisoformat(end),
                    sample=[Step.from_list(s) for s in sample],
                    spent=bool(spent),
                )
                for start, reached, end, sample, spent in data.get("bursts", ())
            ],
            created={
                k: [datetime.fromisoformat(t) for t in v]
                for k, v in data.get("created", {}).items()
            },
            raised={k: datetime.fromisoformat(v) for k, v in data.get("raised", {}).items()},
        )


def keep(
    steps: list[Step], step: Step, cap: int, dropped: Callable[[Step], None] | None = None
) -> None:
    """Insert in event-time order; past `cap` the oldest go (passed to `dropped`)."""
    bisect.insort(steps, step, key=lambda s: s.at)
    while len(steps) > cap:
        old = steps.pop(0)
        if dropped is not None:
            dropped(old)


def drop_before(steps: list[Step], cutoff: datetime) -> None:
    del steps[: bisect.bisect_left(steps, cutoff, key=lambda s: s.at)]


def first_after(steps: list[Step], after: datetime, until: datetime) -> Step | None:
    """The earliest step later than `after` and no later than `until`."""
    index = bisect.bisect_right(steps, after, key=lambda s: s.at)
    return steps[index] if index < len(steps) and steps[index].at <= until else None


def between(steps: list[Step], start: datetime, end: datetime) -> list[Step]:
    low = bisect.bisect_left(steps, start, key=lambda s: s.at)
    high = bisect.bisect_right(steps, end, key=lambda s: s.at)
    return steps[low:high]


def _iso(at: datetime) -> str:
    return at.isoformat()
