"""A watched directory: CloudTrail files dropped into it are read once they stop changing.

Every shape replay reads is accepted (S3 log files, arrays, JSON Lines, single records,
EventBridge envelopes, gzip), and the same files are skipped (digests, hidden files,
unknown suffixes). The directory is polled rather than watched through inotify, so it works
on network and container mounts and needs no extra dependency.

A file is read only after its size and modification time have stayed the same for
`settle_seconds`, so a file still being written is not read half-way. Each file is one
batch; its ack records the file as done (and deletes it with `delete_after`). Done files
are remembered by size and modification time in the checkpoint `files:<name>`, so a
restart does not read them again and a file rewritten in place is read again.
"""

from __future__ import annotations

import asyncio
import logging
import stat
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePath
from typing import Any

import orjson

from detector.errors import ConfigError, StateError
from detector.records import BadInput, Record
from detector.sources.base import SOURCES, Batch, CheckpointStore, SourceBase
from detector.sources.files import InputFile, read_file, wanted
from detector.sources.polling import (
    SettingsReader,
    Sleep,
    redeliverable_batch,
    sleep_until_stopped,
)

logger = logging.getLogger(__name__)

Stamp = tuple[int, int]  # (size, mtime_ns): what "unchanged" means for a file


@dataclass(frozen=True, slots=True)
class _Found:
    path: Path
    size: int
    mtime_ns: int

    @property
    def stamp(self) -> Stamp:
        return (self.size, self.mtime_ns)


class WatchSource(SourceBase):
    """Reads files that appear under a directory. Settings:

    `path` (required directory), `pattern` (glob under it, "**/*"), `poll_interval_seconds`
    (5), `settle_seconds` (2), `delete_after` (false).
    """

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        *,
        clock: Callable[[], float] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        reader = SettingsReader(
            name,
            settings,
            ("path", "pattern", "poll_interval_seconds", "settle_seconds", "delete_after"),
        )
        self.name = name
        self.root = Path(reader.text("path", required=True) or "")
        self.pattern = reader.text("pattern") or "**/*"
        pattern = PurePath(self.pattern)
        # pathlib accepts "**" only as a whole path component and fails late otherwise.
        if (
            pattern.is_absolute()
            or ".." in pattern.parts
            or any("**" in part and part != "**" for part in pattern.parts)
        ):
            raise ConfigError(
                f"{reader.key('pattern')} must be a glob relative to the path, such as "
                f"'**/*.json.gz', got {self.pattern!r}"
            )
        self.poll_interval = reader.seconds("poll_interval_seconds", 5, positive=True)
        self.settle = reader.seconds("settle_seconds", 2)
        self.delete_after = reader.flag("delete_after", False)
        self._clock = clock or time.monotonic
        self._sleep = sleep or self._wait
        self._store: CheckpointStore | None = None
        self._done: dict[str, Stamp] = {}  # relative path → stamp when it was acked
        self._failed: dict[str, Stamp] = {}  # given up on until the file changes
        self._observed: dict[str, tuple[Stamp, float]] = {}  # stamp and when it was first seen
        self._in_flight: set[str] = set()  # delivered, not yet settled
        self._present: set[str] = set()  # files found by the latest scan
        self._redeliver: deque[Batch] = deque()
        self._stopping = asyncio.Event()
        self._ready = False

    @property
    def checkpoint_name(self) -> str:
        return f"files:{self.name}"

    def attach(self, store: CheckpointStore) -> None:
        """Use `store` to remember done files. Call before `start`, which reads it."""
        self._store = store

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        if not await asyncio.to_thread(self.root.is_dir):
            raise ConfigError(f"sources.{self.name}.path: {self.root} is not a directory")
        self._done = self._load_checkpoint()

    async def stop(self) -> None:
        self._stopping.set()

    async def batches(self) -> AsyncIterator[Batch]:
        while not self._stopping.is_set():
            async for batch in self.scan():
                yield batch
            if self._stopping.is_set():
                break
            if not self._redeliver:
                await self._sleep(self.poll_interval)

    async def scan(self) -> AsyncIterator[Batch]:
        """One pass: batches to deliver again first, then one batch per settled new file."""
        while self._redeliver:
            yield self._redeliver.popleft()
        try:
            listing = await asyncio.to_thread(self._list)
        except OSError as exc:
            if self._ready:
                logger.warning("%s: cannot list %s: %s", self.name, self.root, exc)
            self._ready = False
            return
        self._ready = True
        self._present = set(listing)
        now = self._clock()
        due: list[tuple[int, str, _Found]] = []
        for relative, found in listing.items():
            stamp = found.stamp
            if (
                relative in self._in_flight
                or self._done.get(relative) == stamp
                or self._failed.get(relative) == stamp
            ):
                continue
            seen = self._observed.get(relative)
            if seen is None or seen[0] != stamp:
                self._observed[relative] = (stamp, now)
                since = now
            else:
                since = seen[1]
            if now - since >= self.settle:
                due.append((found.mtime_ns, relative, found))
        for gone in self._observed.keys() - self._present:
            del self._observed[gone]
        for gone in self._failed.keys() - self._present:
            del self._failed[gone]
        # Oldest files first, so sessions see events roughly in the order they happened.
        for _, relative, found in sorted(due):
            if self._stopping.is_set():
                return
            items = await asyncio.to_thread(self._read, found)
            self._observed.pop(relative, None)
            if items is None:
                continue  # gone, or changed while being read: it settles again first
            self._in_flight.add(relative)
            yield redeliverable_batch(
                self.name,
                items,
                on_ack=partial(self._finish, relative, found),
                requeue=self._redeliver.append,
                on_give_up=partial(self._give_up, relative, found.stamp),
            )

    def _list(self) -> dict[str, _Found]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"no such directory: {self.root}")
        listing: dict[str, _Found] = {}
        for path in self.root.glob(self.pattern):
            if not wanted(path):
                continue
            try:
                info = path.stat()
            except OSError:
                continue  # removed or renamed since the glob saw it
            # A zero-byte file is usually being created; it is looked at once it grows.
            if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
                continue
            relative = path.relative_to(self.root).as_posix()
            listing[relative] = _Found(path, info.st_size, info.st_mtime_ns)
        return listing

    def _read(self, found: _Found) -> list[Record | BadInput] | None:
        """Every record of the file, or None when it vanished or changed while being read."""
        name = str(found.path)
        items: list[Record | BadInput] = []
        try:
            items.extend(read_file(InputFile(name, found.path, found.size)))
        except FileNotFoundError:
            return None
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            # A truncated gzip or an unreadable file: keep what was read, dead-letter the rest.
            items.append(BadInput(name, f"cannot read the file: {exc}", None))
        try:
            info = found.path.stat()
        except FileNotFoundError:
            return None
        if (info.st_size, info.st_mtime_ns) != found.stamp:
            return None
        return items

    def _finish(self, relative: str, found: _Found) -> None:
        self._in_flight.discard(relative)
        self._done[relative] = found.stamp
        if self.delete_after and self._delete(found):
            del self._done[relative]
        # Only files still there are remembered, so the checkpoint stays as small as the folder.
        self._done = {
            key: value
            for key, value in self._done.items()
            if key in self._present or key == relative
        }
        if self._store is not None:
            value = orjson.dumps(
                {key: list(stamp) for key, stamp in self._done.items()},
                option=orjson.OPT_SORT_KEYS,
            )
            self._store.save_checkpoint(self.checkpoint_name, value.decode())

    def _delete(self, found: _Found) -> bool:
        """Delete a processed file unless it was rewritten since it was read."""
        try:
            info = found.path.stat()
            if (info.st_size, info.st_mtime_ns) != found.stamp:
                return False
            found.path.unlink()
        except FileNotFoundError:
            return True
        except OSError as exc:
            logger.warning("%s: cannot delete %s: %s", self.name, found.path, exc)
            return False
        return True

    def _give_up(self, relative: str, stamp: Stamp) -> None:
        self._in_flight.discard(relative)
        self._failed[relative] = stamp

    def _load_checkpoint(self) -> dict[str, Stamp]:
        if self._store is None:
            return {}
        value = self._store.checkpoint(self.checkpoint_name)
        if value is None:
            return {}
        done = _decode_done(value)
        if done is None:
            raise StateError(
                f"checkpoint {self.checkpoint_name!r} is not a JSON object of "
                f"{{path: [size, mtime_ns]}}: {value[:200]!r}"
            )
        return done

    async def _wait(self, seconds: float) -> None:
        await sleep_until_stopped(self._stopping, seconds)


def _decode_done(value: str) -> dict[str, Stamp] | None:
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(decoded, dict):
        return None
    done: dict[str, Stamp] = {}
    for key, stamp in decoded.items():
        if not (
            isinstance(stamp, list)
            and len(stamp) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in stamp)
        ):
            return None
        done[key] = (stamp[0], stamp[1])
    return done


SOURCES.register("files", WatchSource)
