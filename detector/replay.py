"""Replay: files through the same pipeline the service runs, with counts for the summary."""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from detector.core.findings import Finding, Response
from detector.core.learned import Drained
from detector.core.pipeline import Pipeline, StepResult
from detector.core.session_view import SessionView
from detector.core.taxonomy import Severity
from detector.records import BadInput, Record, Rejection, parse_items
from detector.sources.files import InputFile, UnreadableFile, read_input
from detector.sources.screen import Skip

logger = logging.getLogger(__name__)

# The table shows this many flagged events, most severe first; --format jsonl has them all.
TOP_EVENTS = 10
# Errors are logged one by one up to this many; past it only counted (and dead-lettered).
LOGGED_ERRORS = 20


@dataclass(frozen=True, slots=True)
class FlaggedEvent:
    """One event that raised findings, with all of them: one row of the table."""

    findings: tuple[Finding, ...]

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def severity(self) -> Severity:
        return max(f.severity for f in self.findings)


@dataclass(slots=True)
class ReplayStats:
    """What a replay saw and found, for the table summary and the exit code."""

    files: int = 0
    skipped: list[Skip] = field(default_factory=list)
    # (file name, reason) of each input that could not be read to its end.
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0
    events: int = 0
    duplicates: int = 0
    rejected: int = 0
    findings: Counter[Severity] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    responses: list[Response] = field(default_factory=list)
    sessions: dict[str, SessionView] = field(default_factory=dict)
    session_findings: dict[str, Counter[Severity]] = field(default_factory=dict)
    session_scopes: dict[str, str] = field(default_factory=dict)
    flagged_events: int = 0
    # min-heap of (severity, -sequence, event): keeps the most severe, earliest first.
    _top: list[tuple[int, int, FlaggedEvent]] = field(default_factory=list)
    _sequence: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def skipped_files(self) -> int:
        return len(self.skipped)

    @property
    def max_severity(self) -> Severity | None:
        return max(self.findings) if self.findings else None

    @property
    def finding_count(self) -> int:
        return sum(self.findings.values())

    def top_events(self) -> list[FlaggedEvent]:
        return [e for _, _, e in sorted(self._top, key=lambda t: (-t[0], -t[1]))]

    def add(self, result: StepResult) -> None:
        self.events += 1
        if result.duplicate:
            self.duplicates += 1
            return
        if result.session is not None:
            self.sessions[result.session.session_id] = result.session
        for finding in result.findings:
            self._count(finding)
        if result.findings:
            # A step's findings all belong to its one event.
            self._flag(FlaggedEvent(tuple(result.findings)))
        self.alerts += len(result.alerts)
        self.responses.extend(result.responses)

    def add_drained(self, drained: Drained) -> None:
        """Count what a drain of the baselines found; each finding is a row of its own."""
        for finding in drained.findings:
            self._count(finding)
            self._flag(FlaggedEvent((finding,)))
        self.alerts += len(drained.alerts)
        self.responses.extend(drained.responses)

    def _count(self, finding: Finding) -> None:
        self.findings[finding.severity] += 1
        self.kinds[finding.kind] += 1
        self.session_findings.setdefault(finding.session_id, Counter())[finding.severity] += 1
        if finding.scope:
            self.session_scopes[finding.session_id] = finding.scope

    def _flag(self, flagged: FlaggedEvent) -> None:
        self.flagged_events += 1
        item = (int(flagged.severity), -next(self._sequence), flagged)
        if len(self._top) < TOP_EVENTS:
            heapq.heappush(self._top, item)
        else:
            heapq.heappushpop(self._top, item)


Reject = Callable[[str, str, object], None]


def replay(
    pipeline: Pipeline,
    files: Sequence[InputFile],
    *,
    on_result: Callable[[StepResult], None],
    on_reject: Reject,
    stdin: IO[bytes] | None = None,
    progress: Callable[[int], None] | None = None,
    skipped: Sequence[Skip] = (),
    drain_every: int = 10_000,
    on_drained: Callable[[Drained], None] | None = None,
) -> ReplayStats:
    """Run every record of every file through the pipeline, in order.

    Bad records are reported through `on_reject` and counted; they never stop the run. A
    file that cannot be read (or read to its end) is one rejection named after the file; the
    records read from it before the error are kept, and the next file is read.

    With baselines, their buffered work is drained every `drain_every` events and at the
    end; what a drain finds is counted and handed to `on_drained`. Drained findings do not
    depend on when the drain runs, so the service (which drains per batch) finds the same.
    """
    stats = ReplayStats(files=len(files), skipped=list(skipped))
    for skip in skipped:
        logger.debug("skipped %s: %s", skip.name, skip.description)
    drains = bool(pipeline.baselines)
    every = max(1, drain_every)
    for source in files:
        items = _counted(stats, read_input(source, stdin=stdin, progress=progress))
        for _, event in parse_items(items, functools.partial(_reject, stats, on_reject)):
            result = pipeline.process(event)
            stats.add(result)
            on_result(result)
            if drains and stats.events % every == 0:
                _drain(pipeline, stats, on_drained)
    if drains:
        _drain(pipeline, stats, on_drained)
    return stats


def _drain(
    pipeline: Pipeline, stats: ReplayStats, on_drained: Callable[[Drained], None] | None
) -> None:
    drained = pipeline.drain()
    if not drained.findings:
        return
    stats.add_drained(drained)
    if on_drained is not None:
        on_drained(drained)


def _counted(stats: ReplayStats, items: Iterable[Record | BadInput]) -> Iterator[Record | BadInput]:
    for item in items:
        if isinstance(item, UnreadableFile):
            stats.unreadable.append((item.origin, item.reason))
        else:
            stats.records += 1
        yield item


def _reject(stats: ReplayStats, on_reject: Reject, rejection: Rejection) -> None:
    stats.rejected += 1
    if stats.rejected <= LOGGED_ERRORS:
        logger.error("rejected %s: %s", rejection.origin, rejection.reason)
    elif stats.rejected == LOGGED_ERRORS + 1:
        logger.error("more rejected records follow; they are counted and dead-lettered")
    on_reject(rejection.origin, rejection.reason, rejection.raw)
