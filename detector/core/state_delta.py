"""A shard's state as rows, so a flush saves what changed rather than everything.

A pipeline snapshot is one nested mapping. Most of its bulk sits in a few *collections*:
mappings a few levels down whose entries each belong to one session (the tracker's records,
a session's open alerts, its sequence steps, its baseline counts), plus the credential links
and the eventID window's chunks. Each entry is stored as its own row, keyed
`<dotted path>/<entry key>`; everything else is the *shared* part, small and saved whole.

`assemble` is the only place that knows how rows fit back into a snapshot, and it knows no
more than the keys say, so stores stay ignorant of the pipeline's shape.

A row is JSON once `encode_row` has encoded it. Batches wait while a delta is cut, not while
it is encoded, so a part may hand over immutable values it keeps by the ten thousand (the
sequence steps, their times) as they are, in new containers, and they take their plain form
(`Late.to_plain`; times as `iso_instant` writes them) as the save encodes them: formatting
them was over half of a cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

# Between a collection's dotted path and the entry's key. Paths are fixed names; entry keys
# (session ids, access key ids, chunk numbers) never hold a "/" before the path's end, and
# only the first separator splits.
SEPARATOR = "/"


@dataclass(frozen=True, slots=True, kw_only=True)
class StateDelta:
    """What a flush writes for one shard.

    shared   the snapshot without its collections' entries, saved whole every time
    rows     entries new or changed since the last saved delta, by row key
    removed  row keys whose entries are gone (a delete of a row never saved is harmless)
    full     the rows are all of them: the store drops every other row of the shard
    """

    shared: Mapping[str, Any]
    rows: Mapping[str, Any] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    full: bool = False

    def __post_init__(self) -> None:
        both = self.removed.intersection(self.rows)
        if both:
            raise ValueError(f"rows both written and removed: {sorted(both)[:3]}")


class Late(Protocol):
    """An immutable value in a row that gives its plain JSON form when the row is encoded."""

    def to_plain(self) -> Any: ...


# A time left in a row (they are all UTC) is written as `iso_instant` writes it:
# "2025-12-08T00:00:59Z", with the microseconds only when it has any.
_TIMES_AS_ISO_INSTANT = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def encode_row(value: Any) -> bytes:
    """A row's value as JSON: orjson, with each `Late` value in its plain form."""
    return orjson.dumps(value, default=_plain, option=_TIMES_AS_ISO_INSTANT)


def _plain(value: Any) -> Any:
    to_plain = getattr(value, "to_plain", None)
    if to_plain is None:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
    return to_plain()


def row_key(path: str, key: str) -> str:
    return f"{path}{SEPARATOR}{key}"


def assemble(shared: Mapping[str, Any], rows: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The snapshot the rows were cut from: each row's value put back under its path.

    A collection missing from `shared` (no entries when it was saved) is created.
    """
    snapshot = _copy_tree(shared)
    for key, value in rows:
        path, sep, entry = key.partition(SEPARATOR)
        if not sep or not path or not entry:
            raise ValueError(f"state row key {key!r} is not <path>/<key>")
        node = snapshot
        for part in path.split("."):
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[entry] = value
    return snapshot


def _copy_tree(value: Mapping[str, Any]) -> dict[str, Any]:
    """Copies of the mappings only: rows are put into them, leaves are shared."""
    return {k: _copy_tree(v) if isinstance(v, Mapping) else v for k, v in value.items()}


class Snapshots(Protocol):
    """A part of the pipeline's state: whole, or without its collections' entries.

    Snapshots, like `SessionParts.session_snapshot`, are built of new lists and dicts: they
    are encoded and written while the part goes on changing.
    """

    def snapshot(self) -> dict[str, Any]: ...

    def shared_snapshot(self) -> dict[str, Any]: ...


class SessionParts(Protocol):
    """State kept per session id in the named mappings of the part's snapshot."""

    @property
    def session_collections(self) -> tuple[str, ...]: ...

    def session_snapshot(self, session_id: str) -> Mapping[str, Any]:
        """The session's entries in those mappings, absent where it has none: new lists and
        dicts, as `Snapshots` are, which may hold `Late` values (see `encode_row`)."""
        ...


class RowsBuilder:
    """Collects one delta's rows and removals."""

    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}
        self.removed: set[str] = set()

    def put(self, path: str, key: str, value: Any | None) -> None:
        """The entry's new value, or None when it is gone."""
        self._put_row(row_key(path, key), value)

    def _put_row(self, row: str, value: Any | None) -> None:
        if value is None:
            self.rows.pop(row, None)
            self.removed.add(row)
        else:
            self.removed.discard(row)
            self.rows[row] = value

    def sessions(self, prefix: str, part: SessionParts, session_ids: Iterable[str]) -> None:
        """Each session's entries of `part`, under `<prefix>.<collection>`."""
        heads = [(name, row_key(f"{prefix}.{name}", "")) for name in part.session_collections]
        if not heads:
            return
        # Each collection's key prefix made once, and each row put here rather than through
        # `_put_row`: a cut of 2,000 sessions puts some 18,000 rows, most of them removals (a
        # session has nothing in most collections). No other put makes these keys, so none
        # can be both written and removed (`StateDelta` checks).
        rows, removed = self.rows, self.removed
        for session_id in session_ids:
            entries = part.session_snapshot(session_id)
            for name, head in heads:
                value = entries.get(name)
                if value is None:
                    removed.add(head + session_id)
                else:
                    rows[head + session_id] = value

    def delta(self, shared: Mapping[str, Any], *, full: bool = False) -> StateDelta:
        return StateDelta(shared=shared, rows=self.rows, removed=frozenset(self.removed), full=full)


def split(snapshot: Mapping[str, Any], paths: Iterable[str]) -> StateDelta:
    """The whole snapshot as a full delta: each collection's entries as rows.

    Only the mappings on the way to a collection are copied; entries are handed on as they
    are, so splitting a large shard costs no more than walking it.
    """
    shared: dict[str, Any] = dict(snapshot)
    rows: dict[str, Any] = {}
    for path in paths:
        parent = shared
        *spine, last = path.split(".")
        for part in spine:
            child = parent.get(part)
            if not isinstance(child, Mapping):
                break
            parent[part] = child = dict(child)
            parent = child
        else:
            entries = parent.get(last)
            if isinstance(entries, Mapping):
                for key, value in entries.items():
                    rows[row_key(path, str(key))] = value
                parent[last] = {}
    return StateDelta(shared=shared, rows=rows, full=True)
