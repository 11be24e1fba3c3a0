"""What the pipeline uses of a learned baseline: a model's view of the stream.

A scope says what a task may do; a baseline says what is normal. The pipeline drives every
baseline the same way, after the scope and catalogue have judged an event, so a baseline sees
the findings already raised and never learns from an event someone flagged. Implementations
live in `detector.baseline`; this module holds only the contract, so the core stays free of
how models are fitted, stored or loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from detector.core.findings import Alert, Finding, Response
from detector.core.policy import EventContext


class Baseline(Protocol):
    """One learned model as the pipeline runs it, with state that is snapshotted per shard.

    name      the model's registry name; keys its part of the pipeline snapshot
    observe   scores one event in order and returns its findings. `findings` are those the
              event raised so far (scope, catalogue, earlier baselines); `learn` is False when
              one of them is at or above the learning cut-off, and the model must then leave
              its learned state as it was. The model also skips learning from events it
              flags itself.
    drain     findings from work the model buffered (scoring many rows at once is far cheaper
              than one at a time). The pipeline calls it at the end of every batch in the
              service and every `drain_every` events and at the end in replay; what it
              returns must not depend on when it is called, only on the events seen.
    forget    the session left the tracker (evicted or idle); drop what is kept for it.
    snapshot / restore  plain JSON-able state (online updates included), restored exactly.
    session_collections / shared_snapshot / session_snapshot
              the same state cut for saving only what changed (core/state_delta.py): the
              named mappings of `snapshot` hold one entry per session id, `session_snapshot`
              gives one session's entries (absent where it has none) and `shared_snapshot`
              the rest, with those mappings empty. A session's entries may change only
              while the model observes that session's events, drains or forgets it.
    """

    @property
    def session_collections(self) -> tuple[str, ...]: ...

    @property
    def name(self) -> str: ...

    def observe(
        self, ctx: EventContext, findings: Sequence[Finding], *, learn: bool
    ) -> list[Finding]: ...

    def drain(self) -> list[Finding]: ...

    def forget(self, session_id: str) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, data: Mapping[str, Any]) -> None: ...

    def shared_snapshot(self) -> dict[str, Any]: ...

    def session_snapshot(self, session_id: str) -> dict[str, Any]: ...


@runtime_checkable
class Habits(Protocol):
    """A baseline that can say what a group does habitually (the action model can).

    `severity.habitual_step_down` asks it, before the event is observed, whether `action`
    (as the catalogue names it, `iam:DeleteRole`) is habitual for the event's group (its
    role or IAM user): common enough that the catalogue's severity overstates it. It must
    not change the model's state.
    """

    def habitual(self, ctx: EventContext, action: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Drained:
    """Findings that came out of buffered baseline work, with the decisions they led to."""

    findings: tuple[Finding, ...] = ()
    alerts: tuple[Alert, ...] = ()
    responses: tuple[Response, ...] = ()
