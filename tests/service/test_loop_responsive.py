"""The HTTP endpoints answer while the service works through one large file.

A liveness probe that cannot get an answer for seconds gets a healthy pod killed. The batch
is processed in chunks with a turn of the event loop between them, and the state is saved
in a worker thread (here every half second, so saves fall in the middle of the file); this
proves answers were served in the middle of the batch, which a loop blocked for the whole
batch cannot do.
The latency figures come from `python tests/tools/probe_latency.py`, not from here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.probe import process_while_probing, write_file

pytestmark = pytest.mark.integration
EVENTS = 20_000


async def test_probes_are_answered_in_the_middle_of_a_large_batch(tmp_path: Path) -> None:
    write_file(tmp_path / "inbox", EVENTS)
    run = await process_while_probing(
        tmp_path, events=EVENTS, chunk_events=20, flush_interval_seconds=0.5
    )
    mid_batch = run.mid_batch()
    assert mid_batch, "no /metrics answer was served while the file was being processed"
    assert all(a.status == 200 for a in mid_batch)
    first, last = min(a.sent for a in mid_batch), max(a.sent for a in mid_batch)
    healthz = [a for a in run.answers if a.path == "/healthz" and first <= a.sent <= last]
    assert healthz and all(a.status == 200 for a in healthz)
