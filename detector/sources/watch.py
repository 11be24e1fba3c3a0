"""A watched directory: CloudTrail files dropped into it are read once they stop changing.

Every shape replay reads is accepted (S3 log files, arrays, JSON Lines, single records,
EventBridge envelopes, gzip), judged by content as replay judges it: empty, binary, non-JSON
and non-CloudTrail files, digests, hidden files and FIFOs or devices are skipped, each counted
once by reason (`skipped_files`, exported as trailguard_skipped_files_total). The directory is
polled rather than watched through inotify, so it works on network and container mounts and
needs no extra dependency.

Rejected records, and files that cannot be read to their end, go to `dead_letter`: a
directory (one `<file>.rejected.jsonl` per input file, mirroring the tree, rewritten when the
file is read again) or a file (one JSONL file for every input, appended to). The dead letter
is flushed before the file's ack records it as done.

A file is read only after its size and modification time have stayed the same for
`settle_seconds`, so a file still being written is not read half-way. A file is handed over
as batches of at most `batch_records` items, each read in a worker thread as the service
takes it (see `detector.sources.watch_file`); once every batch is acked the file is done
(and deleted with `delete_after`). Done files are remembered by size and modification time
in the checkpoint `files:<name>`, so a restart does not read them again and a file rewritten
in place is read again; a file part-way through is remembered with its position, and a
restart goes on from there.
"""

from __future__ import annotations

import asyncio
import logging
import stat
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePath
from typing import Annotated, Any

from detector.config import AT_LEAST_ONE, NON_EMPTY, POSITIVE, Check, Where, parse_adapter
from detector.dead_letter import BufferedDeadLetter, InputDeadLetters, LazyDeadLetterFile
from detector.errors import ConfigError, StateError
from detector.records import PackedItems
from detector.sources.base import SOURCES, Batch, CheckpointStore, SourceBase
from detector.sources.files import special_kind
from detector.sources.polling import (
    Sleep,
    redeliverable_batch,
    sleep_until_stopped,
)
from detector.sources.screen import SKIP_DESCRIPTIONS, SkipReason, is_hidden, screen
from detector.sources.watch_file import (
    FileProgress,
    FileReader,
    Part,
    Positions,
    Stamp,
    Step,
    decode_checkpoint,
    delete_unchanged,
    encode_checkpoint,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Found:
    path: Path
    size: int
    mtime_ns: int
    # Known without reading it: a hidden file, or a FIFO, socket or device.
    skip: SkipReason | None = None

    @property
    def stamp(self) -> Stamp:
        return (self.size, self.mtime_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchSettings:
    path: Annotated[str, NON_EMPTY]
    pattern: Annotated[str, NON_EMPTY] = "**/*"
    poll_interval_seconds: Annotated[float, POSITIVE] = 5
    # A file is read once its size and mtime have not changed for this long.
    settle_seconds: Annotated[float, Check(low=0)] = 2
    delete_after: bool = False
    # Where rejected records go: a directory (one file per input) or a file; none by default.
    dead_letter: str | None = None
    # Items per batch: a large file is handed over in steps of this many records.
    batch_records: Annotated[int, AT_LEAST_ONE] = 5000


class WatchSource(SourceBase):
    """Reads files that appear under a directory. Settings:

    `path` (required directory), `pattern` (glob under it, "**/*"), `poll_interval_seconds`
    (5), `settle_seconds` (2), `delete_after` (false), `dead_letter` (a directory, or a
    file; none by default), `batch_records` (5000).
    """

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        *,
        where: Where | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        own = parse_adapter(WatchSettings, name, settings, where, section="sources")
        key = (where or Where(key=f"sources.{name}")).key
        self.name = name
        self.root = Path(own.path)
        self.pattern = own.pattern
        pattern = PurePath(self.pattern)
        # pathlib accepts "**" only as a whole path component and fails late otherwise.
        if (
            pattern.is_absolute()
            or ".." in pattern.parts
            or any("**" in part and part != "**" for part in pattern.parts)
        ):
            raise ConfigError(
                f"'{key}.pattern' must be a glob relative to the path, such as "
                f"'**/*.json.gz', got {self.pattern!r}"
            )
        self.poll_interval = own.poll_interval_seconds
        self.settle = own.settle_seconds
        self.delete_after = own.delete_after
        self.batch_records = own.batch_records
        # Checked here too, not only at start, so `config check` finds a mistyped path.
        if not self.root.is_dir():
            raise ConfigError(f"'{key}.path': {self.root} is not a directory")
        dead_letter = own.dead_letter
        self.dead_letters = InputDeadLetters(dead_letter) if dead_letter is not None else None
        if self.dead_letters is not None and self._is_under_root(self.dead_letters.path):
            raise ConfigError(
                f"'{key}.dead_letter' must be outside {self.root}, or the dead "
                f"letters would be read as input"
            )
        self._skips: Counter[SkipReason] = Counter()
        self._skipped: dict[str, Stamp] = {}  # skipped files, until they change
        self._clock = clock or time.monotonic
        self._sleep = sleep or self._wait
        self._store: CheckpointStore | None = None
        self._done: dict[str, Stamp] = {}  # relative path → stamp when it was acked
        # Files part-way through: stamp and position (items settled from the start).
        self._positions: Positions = {}
        self._failed: dict[str, Stamp] = {}  # given up on until the file changes
        self._observed: dict[str, tuple[Stamp, float]] = {}  # stamp and when it was first seen
        self._reads: dict[str, FileProgress] = {}  # being delivered, or not yet settled
        self._present: set[str] = set()  # files found by the latest scan
        self._redeliver: deque[Batch] = deque()
        self._stopping = asyncio.Event()
        self._ready = False

    @property
    def skipped_files(self) -> Mapping[str, int]:
        """Files not read, by reason: each file counted once until it changes."""
        return {reason.value: count for reason, count in self._skips.items()}

    def _is_under_root(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return True

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
        self._done, self._positions = self._load_checkpoint()

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
        """One pass: batches to deliver again first, then the batches of each settled file."""
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
                relative in self._reads
                or self._done.get(relative) == stamp
                or self._failed.get(relative) == stamp
                or self._skipped.get(relative) == stamp
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
        for gone in self._skipped.keys() - self._present:
            del self._skipped[gone]
        # Oldest files first, so sessions see events roughly in the order they happened.
        for _, relative, found in sorted(due):
            if self._stopping.is_set():
                return
            if found.skip is not None:
                self._skip(relative, found, found.skip)
                continue
            async for batch in self._deliver(relative, found):
                yield batch

    async def _deliver(self, relative: str, found: _Found) -> AsyncIterator[Batch]:
        """One file's batches, each read as the previous one was taken; batches nacked in
        the meantime go first."""
        reason = await asyncio.to_thread(screen, found.path)
        if reason is not None:
            self._observed.pop(relative, None)
            self._skip(relative, found, reason)
            return
        start = self._start_of(relative, found.stamp)
        reader = FileReader(found.path, found.stamp, start=start, batch_records=self.batch_records)
        progress: FileProgress | None = None
        step: Step | None = None
        try:
            while True:
                step = await asyncio.to_thread(reader.read)
                if step is None:
                    # Gone, or changed while being read: it settles again first, and is
                    # then read from its start as a new file.
                    self._observed.pop(relative, None)
                    break
                if progress is None:
                    self._observed.pop(relative, None)
                    progress = self._begin(relative, found.stamp, start)
                if step.items:
                    part = progress.add(step)
                    yield self._batch(progress, part, step.items)
                if step.ended:
                    progress.ended = True
                    break
                while self._redeliver:
                    yield self._redeliver.popleft()
                if self._stopping.is_set():
                    break
        finally:
            if step is None or not step.ended:
                await asyncio.to_thread(reader.close)
            if progress is not None:
                # Stopped before the end: changed, gone, stopping, or no longer taken.
                progress.abandoned = not progress.ended
                if progress.finished:
                    self._end(progress)

    def _begin(self, relative: str, stamp: Stamp, start: int) -> FileProgress:
        letter = self._dead_letter_for(relative, resume=start > 0)
        progress = FileProgress(relative, stamp, start, letter)
        self._reads[relative] = progress
        return progress

    def _batch(self, progress: FileProgress, part: Part, items: PackedItems) -> Batch:
        batch = redeliverable_batch(
            self.name,
            items,
            on_ack=partial(self._settled, progress, part),
            requeue=partial(self._requeue, part),
            on_give_up=partial(self._lost, progress, part),
        )
        if self.dead_letters is not None:
            batch.dead_letter = part.letter
        return batch

    def _start_of(self, relative: str, stamp: Stamp) -> int:
        """Where to start reading: the saved position when the file is unchanged since."""
        saved = self._positions.get(relative)
        if saved is not None and saved[0] == stamp:
            return saved[1]
        self._positions.pop(relative, None)
        self._done.pop(relative, None)
        return 0

    def _skip(self, relative: str, found: _Found, reason: SkipReason) -> None:
        self._skipped[relative] = found.stamp
        self._skips[reason] += 1
        logger.info("%s: skipped %s: %s", self.name, found.path, SKIP_DESCRIPTIONS[reason])

    def _requeue(self, part: Part, batch: Batch) -> None:
        if self.dead_letters is not None:
            # A fresh buffer: what the failed delivery rejected is not kept.
            part.letter = BufferedDeadLetter()
            batch.dead_letter = part.letter
        self._redeliver.append(batch)

    def _dead_letter_for(self, relative: str, *, resume: bool) -> LazyDeadLetterFile | None:
        if self.dead_letters is None:
            return None
        return self.dead_letters.for_delivery(relative, resume=resume)

    def _settle_dead_letter(self, relative: str) -> None:
        if self.dead_letters is not None:
            self.dead_letters.settle(relative)

    def _list(self) -> dict[str, _Found]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"no such directory: {self.root}")
        listing: dict[str, _Found] = {}
        for path in self.root.glob(self.pattern):
            try:
                info = path.stat()
            except OSError:
                continue  # removed or renamed since the glob saw it
            if stat.S_ISDIR(info.st_mode):
                continue
            skip = None
            if is_hidden(path, self.root):
                skip = SkipReason.HIDDEN
            elif not stat.S_ISREG(info.st_mode):
                logger.warning(
                    "%s: %s is a %s, not a file", self.name, path, special_kind(info.st_mode)
                )
                skip = SkipReason.SPECIAL_FILE
            relative = path.relative_to(self.root).as_posix()
            # An empty file is usually being created: like any file, it is judged once it has
            # stayed the same for settle_seconds, and read once it grows.
            listing[relative] = _Found(path, info.st_size, info.st_mtime_ns, skip)
        return listing

    def _settled(self, progress: FileProgress, part: Part) -> None:
        """A batch was acked: save the position it moved to, or the file as done."""
        moved = progress.settle(part)
        if progress.finished:
            self._end(progress)
        elif moved:
            self._positions[progress.relative] = (progress.stamp, progress.position)
            self._save()

    def _lost(self, progress: FileProgress, part: Part) -> None:
        progress.lose(part)
        if progress.finished:
            self._end(progress)

    def _end(self, progress: FileProgress) -> None:
        """Nothing more of this read will be settled: the file is done, failed, or left
        part-way (stopping, or changed since) at its saved position."""
        relative = progress.relative
        if self._reads.get(relative) is not progress:
            return
        del self._reads[relative]
        # What was dead-lettered is on disk before the file counts as done.
        self._settle_dead_letter(relative)
        if progress.lost:
            self._failed[relative] = progress.stamp
        if progress.complete:
            self._positions.pop(relative, None)
            self._done[relative] = progress.stamp
            deleted = self.delete_after and delete_unchanged(self.root / relative, progress.stamp)
            if deleted:
                del self._done[relative]
            self._save(keep=relative)
        elif progress.position > 0:
            self._positions[relative] = (progress.stamp, progress.position)
            self._save()

    def _save(self, *, keep: str | None = None) -> None:
        # Only files still there are remembered, so the checkpoint stays as small as the folder.
        def present(key: str) -> bool:
            return key in self._present or key == keep or key in self._reads

        self._done = {key: stamp for key, stamp in self._done.items() if present(key)}
        self._positions = {key: at for key, at in self._positions.items() if present(key)}
        if self._store is not None:
            value = encode_checkpoint(self._done, self._positions)
            self._store.save_checkpoint(self.checkpoint_name, value)

    def _load_checkpoint(self) -> tuple[dict[str, Stamp], Positions]:
        if self._store is None:
            return {}, {}
        value = self._store.checkpoint(self.checkpoint_name)
        if value is None:
            return {}, {}
        decoded = decode_checkpoint(value)
        if decoded is None:
            raise StateError(
                f"checkpoint {self.checkpoint_name!r} is not a JSON object of "
                f"{{path: [size, mtime_ns]}} or {{path: [size, mtime_ns, position]}}: "
                f"{value[:200]!r}"
            )
        return decoded

    async def _wait(self, seconds: float) -> None:
        await sleep_until_stopped(self._stopping, seconds)


SOURCES.register("files", WatchSource)
