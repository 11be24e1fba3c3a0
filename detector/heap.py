"""Keeping the garbage collector's full passes short while the service holds large state.

CPython's cyclic collector walks every tracked object of the oldest generation on a full
pass, and it holds the interpreter lock while it does. A service holding tens of thousands
of sessions, sequence steps and open alerts has hundreds of thousands of such objects: one
full pass took 0.3 s on a quiet 2-core machine and over a second on a busy one, and nothing
else runs meanwhile (not /healthz, not /metrics).

What the pipeline keeps per event and per session holds no reference cycles
(tests/service/test_heap.py holds it to that): a session, a step or an alert dies by
reference counting alone when the pipeline drops it, frozen or not. So what has survived a
batch is moved out of the collector's view (`gc.freeze`), and a full pass walks only what
was made since. Only the collector can free a cycle, and two kinds stay frozen until the
service discards a pipeline (a shard rolled back, fenced off, or handed to another
instance): the pipeline itself, whose catalogue and agent-marker caches refer back to it (a
few hundred objects, however many events it saw), and a cycle made outside the pipeline,
such as a failed sink write's exception and its traceback. On a discard the collector sees
everything again (`release`), at the cost of one long pass on a rare event.

Saving a shard builds its snapshot, a few hundred thousand short-lived lists and dicts for
tens of thousands of sessions, and each time the count of new objects crosses the
collector's threshold it walks them all again (three full passes of 0.1 s each for one
save of 34,000 sessions). They hold no cycles and die when the save is done, so the
collector is paused while a shard's delta is built (`paused`), and what the pause built is
frozen when it ends. Left in the young generations, the delta (some 40,000 lists and dicts
for 2,000 changed sessions) was walked by the next two passes while the save still held
it, 30 to 130 ms right after each cut, with batches waiting; frozen, it is freed by
reference counting when its save lets go of it. Young garbage is collected as the pause
begins, so what is frozen at its end is what is alive, but for a cycle another thread makes
and drops during the pause, which stays frozen as a failed write's traceback does.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol


class Heap(Protocol):
    """What the service tells the collector about the state it keeps."""

    def settle(self) -> None:
        """A batch is done: what survived it is long-lived state."""

    def release(self) -> None:
        """Long-lived state was discarded and needs the collector to free it."""

    def paused(self) -> AbstractContextManager[None]:
        """A bounded burst of acyclic objects that live until a save is done: no collection
        while it runs, and none walks them after it."""


class FreezingHeap:
    """Freezes what survives each batch; unfreezes when a pipeline is discarded."""

    def settle(self) -> None:
        # Young garbage first, so that what is frozen is what is alive.
        gc.collect(1)
        gc.freeze()

    def release(self) -> None:
        gc.unfreeze()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        enabled = gc.isenabled()
        gc.collect(1)
        gc.disable()
        try:
            yield
        finally:
            gc.freeze()
            if enabled:
                gc.enable()


class PlainHeap:
    """Leaves the collector as it is (`service.gc_freeze: false`)."""

    def settle(self) -> None:
        return None

    def release(self) -> None:
        return None

    def paused(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


def heap_for(freeze: bool) -> Heap:
    return FreezingHeap() if freeze else PlainHeap()
