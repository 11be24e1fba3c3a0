"""What the sequence patterns keep per session, bounded, and its plain-JSON form.

Every list is kept in event-time order and capped; past a cap the oldest entry goes. The
detector (`detector.core.sequences`) prunes by time; this module only keeps and serialises.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from detector.core.sequence_steps import Step
from detector.core.timestamps import iso_instant

_T = TypeVar("_T")

NEVER = datetime.min.replace(tzinfo=UTC)

# Per-session caps.
MAX_ANCHORS = 16  # destroys, creates, blindings, grants and identity uses, each
MAX_WRITES = 4  # the newest: only an anchor that arrives late looks for a write after it
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

    Most sessions only ever read, so every collection starts as a shared empty tuple and
    becomes a list or dict on its first entry (`keep` returns the list to store back).

    high      the watermark: the latest event time seen in the session
    first     its earliest step, kept for sessions on a long-term key: a new key's first
              call is its first use
    reads     the latest call of each read action, oldest first
    created   resource key (or "noun:<service>:<Noun>") -> first and last time the session
              created it; kept for the session's lifetime, so tearing down one's own set-up
              is recognised however long the set-up ran
    raised    sequence keys already raised -> the time of their first step
    pruned    not kept in snapshots: pruning earlier or later changes nothing found
    """

    high: datetime
    identities: tuple[str, ...]
    long_term_key: bool = False  # signs with an IAM user's key (identities has a "key:")
    pruned: datetime = NEVER
    first: Step | None = None
    destroys: Sequence[Step] = ()
    creates: Sequence[Step] = ()
    blinds: Sequence[Step] = ()
    grants: Sequence[Step] = ()
    writes: Sequence[Step] = ()
    denied: Sequence[Step] = ()
    calls: Sequence[Step] = ()  # steps that assume a role or sign in
    reads: Sequence[Step] = ()
    bursts: Sequence[Burst] = ()
    created: dict[str, tuple[datetime, ...]] | None = None
    raised: dict[str, datetime] | None = None

    @classmethod
    def start(cls, high: datetime, identities: tuple[str, ...]) -> SessionState:
        long_term = any(key.startswith("key:") for key in identities)
        return cls(high=high, identities=identities, long_term_key=long_term)

    def read_steps(self) -> Iterable[Step]:
        return self.reads

    def mark(self, key: str, at: datetime) -> bool:
        """Record that a sequence was raised; False when it already was."""
        if self.raised is None:
            self.raised = {}
        elif key in self.raised:
            return False
        self.raised[key] = at
        while len(self.raised) > MAX_RAISED:
            del self.raised[next(iter(self.raised))]
        return True

    def remember_created(self, keys: tuple[str, ...], at: datetime) -> None:
        if self.created is None:
            self.created = {}
        for key in keys:
            times = sorted({*self.created.pop(key, ()), at})
            # A new tuple each time, never changed in place: a state row may hold it.
            self.created[key] = (times[0], times[-1]) if len(times) > 1 else (times[0],)
        while len(self.created) > MAX_CREATED:
            del self.created[next(iter(self.created))]

    def created_before(self, key: str, before: datetime, *, same_second: bool = False) -> bool:
        times = self.created.get(key) if self.created else None
        if not times:
            return False
        return times[0] <= before if same_second else times[0] < before

    def keep_read(self, step: Step) -> None:
        """The latest call of each read action is enough to count distinct reads. A sequence,
        not a dict: most sessions keep one or two (see `keep`), and a dict costs four times
        as much."""
        reads = self.reads
        if reads and reads[-1].action == step.action and reads[-1].at <= step.at:
            # The same call again, the usual case for a busy session.
            if isinstance(reads, list):
                reads[-1] = step
            else:
                self.reads = (*reads[:-1], step)
            return
        for index, current in enumerate(reads):
            if current.action == step.action:
                if current.at > step.at:
                    return
                reads = reads if isinstance(reads, list) else list(reads)
                del reads[index]
                break
        self.reads = keep(reads, step, MAX_READS)

    def extend_burst(self, at: datetime, window: timedelta) -> bool:
        """Whether a call at `at` belongs to a burst already found (which it then extends).
        Such a call is not kept: no other burst can count it (bursts are `window` apart)."""
        for burst in self.bursts:
            if burst.start - window <= at <= burst.end + window:
                burst.start, burst.end = min(burst.start, at), max(burst.end, at)
                return True
        return False

    def burst_at(
        self, at: datetime, window: timedelta, *, distinct_reads: int, denied_calls: int
    ) -> Burst | None:
        """A new burst that a call at `at` completes, or None. A burst is `distinct_reads`
        read actions or `denied_calls` denied calls within `window`."""
        if len(self.reads) < distinct_reads and len(self.denied) < denied_calls:
            return None  # too few calls kept for any burst: the usual case, decided at once
        spans = [(at - window, at)]
        if at < self.high:  # a late call can also open a burst of calls seen after it
            spans.append((at, at + window))
        for start, end in spans:
            sample = self._burst_calls(start, end, distinct_reads, denied_calls)
            if sample is not None:
                burst = Burst(
                    start=sample[0].at, reached=sample[-1].at, end=sample[-1].at, sample=sample
                )
                self.bursts = sorted([*self.bursts, burst], key=lambda b: b.start)[-MAX_BURSTS:]
                return burst
        return None

    def _burst_calls(
        self, start: datetime, end: datetime, distinct_reads: int, denied_calls: int
    ) -> list[Step] | None:
        """The calls that make a burst within [start, end], oldest first, or None."""
        reads: list[Step] = []
        for read in reversed(self.reads):  # newest first
            if read.at < start:
                break
            if read.at <= end:
                reads.append(read)
        if len(reads) >= distinct_reads:
            return sorted(reads, key=lambda s: s.at)[:distinct_reads]
        denied = between(self.denied, start, end)
        return list(denied[:denied_calls]) if len(denied) >= denied_calls else None

    def to_dict(self, *, late: bool = False) -> dict[str, Any]:
        """Plain JSON, leaving out what is empty; steps without the session id (the key).

        `late`: the steps and times as they are, in new containers, for a state row (they
        are immutable; `encode_row` gives them their plain form, the times as `iso_instant`
        does). A session that created hundreds of resources is written on each of its
        changes, and formatting their times cost more than the rest of its row."""
        step: Callable[[Step], Any] = _as_is if late else Step.to_list
        iso: Callable[[datetime], Any] = _as_is if late else _iso
        data: dict[str, Any] = {"high": iso(self.high), "identities": list(self.identities)}
        if self.first is not None:
            data["first"] = step(self.first)
        for name in _STEP_LISTS:
            steps: Sequence[Step] = getattr(self, name)
            if steps:
                data[name] = list(steps) if late else [s.to_list() for s in steps]
        if self.bursts:
            data["bursts"] = [
                [iso(b.start), iso(b.reached), iso(b.end), [step(s) for s in b.sample], b.spent]
                for b in self.bursts
            ]  # fmt: skip
        if self.created:
            data["created"] = (
                dict(self.created)
                if late
                else {k: [_iso(t) for t in v] for k, v in self.created.items()}
            )
        if self.raised:
            data["raised"] = (
                dict(self.raised) if late else {k: _iso(v) for k, v in self.raised.items()}
            )
        return data

    @classmethod
    def from_dict(cls, session_id: str, data: Mapping[str, Any]) -> SessionState:
        def step(raw: Sequence[Any]) -> Step:
            return Step.from_list(raw, session_id)

        state = cls.start(datetime.fromisoformat(data["high"]), tuple(data.get("identities", ())))
        if data.get("first"):
            state.first = step(data["first"])
        for name in _STEP_LISTS:
            if data.get(name):
                steps = [step(s) for s in data[name]]
                setattr(state, name, tuple(steps) if len(steps) <= 2 else steps)
        state.bursts = [
            Burst(
                start=datetime.fromisoformat(start),
                reached=datetime.fromisoformat(reached),
                end=datetime.fromisoformat(end),
                sample=[step(s) for s in sample],
                spent=bool(spent),
            )
            for start, reached, end, sample, spent in data.get("bursts", ())
        ]
        if data.get("created"):
            state.created = {
                k: tuple(datetime.fromisoformat(t) for t in v) for k, v in data["created"].items()
            }
        if data.get("raised"):
            state.raised = {k: datetime.fromisoformat(v) for k, v in data["raised"].items()}
        return state


_STEP_LISTS = ("destroys", "creates", "blinds", "grants", "writes", "denied", "calls", "reads")


def keep(
    steps: Sequence[Step], step: Step, cap: int, dropped: Callable[[Step], None] | None = None
) -> Sequence[Step]:
    """`steps` with `step` inserted in event-time order, to store back; past `cap` the
    oldest go (each passed to `dropped`).

    Up to two steps are a tuple, more a list grown in place: most sessions keep one or two
    steps in each list they have, and a tuple of one is 32 bytes less than a list of one."""
    if len(steps) < 2 <= cap:
        if not steps:
            return (step,)
        only = steps[0]
        return (only, step) if only.at <= step.at else (step, only)
    kept = steps if isinstance(steps, list) else list(steps)
    if not kept or kept[-1].at <= step.at:
        kept.append(step)  # in order, the usual case
    else:
        bisect.insort(kept, step, key=lambda s: s.at)
    while len(kept) > cap:
        old = kept.pop(0)
        if dropped is not None:
            dropped(old)
    return kept


def drop_before(steps: Sequence[Step], cutoff: datetime) -> Sequence[Step]:
    if steps and steps[0].at < cutoff:
        return steps[bisect.bisect_left(steps, cutoff, key=lambda s: s.at) :] or ()
    return steps


def first_after(steps: Sequence[Step], after: datetime, until: datetime) -> Step | None:
    """The earliest step later than `after` and no later than `until`."""
    index = bisect.bisect_right(steps, after, key=lambda s: s.at)
    return steps[index] if index < len(steps) and steps[index].at <= until else None


def between(steps: Sequence[Step], start: datetime, end: datetime) -> Sequence[Step]:
    low = bisect.bisect_left(steps, start, key=lambda s: s.at)
    high = bisect.bisect_right(steps, end, key=lambda s: s.at)
    return steps[low:high]


def _as_is(value: _T) -> _T:
    return value


def _iso(at: datetime) -> str:
    return iso_instant(at)
