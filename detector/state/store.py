"""The contract every state store keeps, and the snapshot encoding they share.

The always-on service runs one pipeline per shard (a partition of the keyed topic, or
"default" when it reads unpartitioned sources). Whoever processes a shard first `claim`s it,
which bumps the shard's epoch; every later `save` names that epoch and fails with
`FencedError` once somebody else has claimed the shard. After a Kafka rebalance the old owner
may still be finishing a batch: fencing is what stops it from overwriting the state the new
owner has already saved.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import orjson

from detector.core.state_delta import StateDelta, assemble, encode_row
from detector.errors import StateError
from detector.state.approvals import ApprovalRow, SessionSummary, TimelineEntry
from detector.state.gate_verdicts import GateVerdictRow
from detector.state.tasks import TaskRow

# Level 1: snapshots are written on every checkpoint interval, so speed matters more than the
# last few percent; JSON of session state still shrinks several-fold at this level.
COMPRESSION_LEVEL = 1

NO_CHECKPOINTS: Mapping[str, str] = MappingProxyType({})


class FencedError(StateError):
    """Another owner claimed the shard after this one: its state must not be written.

    Not retriable: the instance has lost the shard and must drop its in-memory pipeline,
    not try again.
    """

    retriable = False

    def __init__(
        self, shard: str, *, epoch: int, current_epoch: int | None, owner: str | None
    ) -> None:
        if current_epoch is None:
            held = "has never been claimed"
        else:
            held = f"is held by {owner!r} at epoch {current_epoch}"
        super().__init__(f"shard {shard!r} {held}; this instance holds epoch {epoch}")
        self.shard = shard
        self.epoch = epoch
        self.current_epoch = current_epoch
        self.owner = owner


@runtime_checkable
class StateStore(Protocol):
    """Durable pipeline snapshots per shard, fenced by epoch, plus named source checkpoints.

    Calls are blocking and thread-safe; the async runtime calls them through
    `asyncio.to_thread`. A dependency that is down raises `TransientError`; anything else
    that goes wrong raises `StateError`.
    """

    def claim(self, shard: str, owner: str) -> int:
        """Take ownership of `shard` and return its new epoch, which fences older owners."""
        ...

    def load(self, shard: str) -> Mapping[str, Any] | None:
        """The snapshot saved for `shard` (its shared part with its rows put back), or None
        when there is none yet."""
        ...

    def shards(self) -> list[str]:
        """The shards that have a saved snapshot, in name order (for `trailguard sessions`)."""
        ...

    def save(
        self,
        shard: str,
        state: StateDelta | Mapping[str, Any],
        *,
        epoch: int,
        checkpoints: Mapping[str, str] = NO_CHECKPOINTS,
    ) -> None:
        """Store the state and the checkpoints in one transaction.

        `state` is what changed (a `StateDelta`: its shared part replaces the stored one, its
        rows are written, its removed rows deleted, and a full one drops every other row of
        the shard) or a whole snapshot, saved as a full delta with no rows. `load` gives back
        the snapshot the rows assemble into. Raises FencedError, writing nothing, when
        `epoch` is no longer the shard's epoch.
        """
        ...

    def checkpoint(self, name: str) -> str | None:
        """The position a source saved under `name`, or None."""
        ...

    def save_checkpoint(self, name: str, value: str) -> None:
        """Record a source's position on its own, for sources that are not sharded."""
        ...

    def close(self) -> None:
        """Release the connection. Idempotent; any later call raises StateError."""
        ...

    # -- the response journal (migration 2) ----------------------------------------------

    def journal(self, entries: Sequence[JournalEntry]) -> None:
        """Append entries to the response journal, in order, in one transaction."""
        ...

    def journal_entries(
        self,
        *,
        session_id: str | None = None,
        response_key: str | None = None,
        since: datetime | None = None,
        outcomes: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries oldest first, filtered; `limit` keeps the newest that many."""
        ...

    # -- approvals (two-person rule) ---------------------------------------------------------

    def open_approval(self, row: ApprovalRow) -> ApprovalRow:
        """Store `row` unless a request with its `request_key` exists; return the stored one."""
        ...

    def approval(self, approval_id: str) -> ApprovalRow | None: ...

    def approvals(
        self, *, status: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[ApprovalRow]:
        """Newest first, optionally only one status or one session's."""
        ...

    def decide_approval(
        self,
        approval_id: str,
        *,
        status: str,
        outcome: str,
        decided_by: str,
        decided_at: datetime,
        note: str | None = None,
    ) -> ApprovalRow | None:
        """Record the decision if the request is still pending; return the row as stored
        afterwards (a request decided earlier keeps its first decision), None if unknown."""
        ...

    def unreleased_approvals(self, *, limit: int = 100) -> list[ApprovalRow]:
        """Decided requests whose decision has not been handed to the responders yet."""
        ...

    def mark_approval_released(self, approval_id: str, at: datetime) -> None: ...

    # -- session timeline (session page) ----------------------------------------------------

    def record_timeline(
        self, entries: Sequence[TimelineEntry], summaries: Sequence[SessionSummary], *, cap: int
    ) -> None:
        """Add entries (an entry already stored is skipped), upsert the summaries, and keep at
        most `cap` entries per session (the newest), all in one transaction."""
        ...

    def timeline(self, session_id: str, *, limit: int = 1000) -> list[TimelineEntry]:
        """The session's entries, oldest first."""
        ...

    def session_summary(self, session_id: str) -> SessionSummary | None: ...

    def recent_sessions(self, *, limit: int = 100) -> list[SessionSummary]:
        """Sessions with recorded entries, most recently active first."""
        ...

    # -- agent tasks (migration 4) -------------------------------------------------------------

    def put_task(self, row: TaskRow) -> None:
        """Register a task; a task id or source identity already registered raises StateError."""
        ...

    def task(self, task_id: str) -> TaskRow | None: ...

    def tasks(
        self, *, status: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[TaskRow]:
        """Newest first; `since` keeps tasks that expired or ended at or after it (the ones
        whose late use still matters to the detector)."""
        ...

    def end_task(self, task_id: str, *, at: datetime) -> TaskRow | None:
        """Mark an active task ended at `at`; a task ended earlier keeps its first end. The
        row as stored afterwards, None if unknown."""
        ...

    # -- the pre-flight gate's verdicts (migration 5) --------------------------------------

    def record_gate_verdict(
        self, row: GateVerdictRow, *, cap: int, summary: SessionSummary | None = None
    ) -> tuple[GateVerdictRow, bool]:
        """Store the verdict unless one with its id is stored; (the stored row, whether it was
        new). A new verdict also upserts `summary` and keeps the session's newest `cap`
        verdicts, in the same transaction."""
        ...

    def gate_verdict(self, verdict_id: str) -> GateVerdictRow | None: ...

    def gate_verdicts(
        self,
        *,
        session_id: str | None = None,
        task_id: str | None = None,
        decision: str | None = None,
        limit: int = 100,
    ) -> list[GateVerdictRow]:
        """Newest first, filtered by session, task and decision (all that are given)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """One line of the response journal: a response decided, held, or its outcome.

    `detail` holds the evidence as JSON-able data: the policy written and read back, the deny
    key, the timings, the triggering event. `id` is assigned by the store.
    """

    recorded_at: datetime
    response_key: str
    session_id: str
    action: str
    responder: str | None
    outcome: str
    dry_run: bool
    reason: str
    detail: Mapping[str, object] = field(default_factory=dict)
    id: int | None = None


def encode_detail(detail: Mapping[str, object]) -> str:
    try:
        return orjson.dumps(dict(detail), default=str).decode()
    except TypeError as exc:
        raise StateError(f"journal detail is not JSON-serialisable: {exc}") from exc


def decode_detail(text: str) -> dict[str, object]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"stored journal detail is damaged: {exc}") from exc
    return value if isinstance(value, dict) else {"value": value}


def encode_snapshot(snapshot: Mapping[str, Any]) -> bytes:
    """The stored form of a snapshot: orjson, then zlib (which lets other threads run)."""
    try:
        raw = dumps_in_pieces(snapshot if isinstance(snapshot, dict) else dict(snapshot))
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise StateError(f"snapshot is not JSON-serialisable: {exc}") from exc
    return zlib.compress(raw, COMPRESSION_LEVEL)


# Items of a list encoded by one orjson call; orjson holds the interpreter lock for a
# whole call, and one call over a shard of 34,000 sessions (45 MB) held it for 0.2 s.
PIECE_ITEMS = 1000


def dumps_in_pieces(value: Any, depth: int = 0) -> bytes:
    """What `orjson.dumps(value)` returns, byte for byte, made by many short calls.

    Saves run in a worker thread beside the event loop; between two calls the loop gets
    the interpreter lock back, so /healthz answers while a large shard is encoded. The
    snapshot's bulk is in long lists and wide mappings a few levels down; each is encoded
    PIECE_ITEMS items at a time, and what lies below them in one call per piece.
    """
    if isinstance(value, dict) and depth < _SPLIT_DEPTH:
        if len(value) <= PIECE_ITEMS:
            return b"{" + b",".join(_member(k, v, depth) for k, v in value.items()) + b"}"
        items = list(value.items())
        return b"{" + b",".join(_slices(items, dict)) + b"}"
    if isinstance(value, list) and len(value) > PIECE_ITEMS:
        return b"[" + b",".join(_slices(value, list)) + b"]"
    return orjson.dumps(value)


_SPLIT_DEPTH = 3


def _member(key: Any, item: Any, depth: int) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"dict key must be str, not {type(key).__name__}")
    return orjson.dumps(key) + b":" + dumps_in_pieces(item, depth + 1)


def _slices(items: list[Any], shape: Callable[[list[Any]], Any]) -> Iterator[bytes]:
    for start in range(0, len(items), PIECE_ITEMS):
        yield orjson.dumps(shape(items[start : start + PIECE_ITEMS]))[1:-1]


@dataclass(frozen=True, slots=True)
class EncodedDelta:
    """A delta in its stored form, encoded before the store's lock is taken."""

    shared: bytes
    rows: list[tuple[str, bytes]]
    removed: list[str]
    full: bool


def encode_delta(state: StateDelta | Mapping[str, Any]) -> EncodedDelta:
    delta = state if isinstance(state, StateDelta) else StateDelta(shared=state, full=True)
    try:
        # One short orjson call per row: other threads (the event loop) run in between.
        rows = [
            (key, zlib.compress(encode_row(value), COMPRESSION_LEVEL))
            for key, value in delta.rows.items()
        ]
    except TypeError as exc:
        raise StateError(f"state row is not JSON-serialisable: {exc}") from exc
    return EncodedDelta(encode_snapshot(delta.shared), rows, sorted(delta.removed), delta.full)


def decode_rows(shared: bytes, rows: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
    """The snapshot a stored shared part and its rows assemble into."""
    snapshot = decode_snapshot(shared)
    try:
        return assemble(snapshot, ((key, _decode_row(key, value)) for key, value in rows))
    except ValueError as exc:
        raise StateError(f"stored state rows are damaged: {exc}") from exc


def _decode_row(key: str, blob: bytes) -> Any:
    try:
        return orjson.loads(zlib.decompress(blob))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise StateError(f"stored state row {key!r} is damaged: {exc}") from exc


def decode_snapshot(blob: bytes) -> dict[str, Any]:
    """The inverse of encode_snapshot; a damaged blob raises StateError, not a bare zlib error."""
    try:
        value = orjson.loads(zlib.decompress(blob))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise StateError(f"stored snapshot is damaged: {exc}") from exc
    if not isinstance(value, dict):
        raise StateError(f"stored snapshot is a JSON {type(value).__name__}, not an object")
    return value
