"""Probing /healthz and /metrics from another process while the service works through a file.

The probe runs in its own process, as a kubelet or Prometheus would from outside, so a
stalled event loop shows up as a slow answer instead of stalling the prober too. Each /metrics
answer also says how many events had been processed when it was served: an answer with a
count strictly between zero and the file's size was served in the middle of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from detector.config import ServiceSettings, Settings, StateSettings
from detector.http_server import Health, HttpServer
from detector.metrics import Metrics
from detector.service import Service
from detector.sinks.jsonl import JsonlSink
from detector.sources.watch import WatchSource
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.scenario import DEMO, as_jsonl, scenario

EVENTS = re.compile(rb'^trailguard_events_total\{source="inbox"\} ([0-9.e+]+)$', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Answer:
    path: str
    sent: float  # monotonic
    seconds: float
    status: int
    events: float | None  # trailguard_events_total in a /metrics answer


class Prober(threading.Thread):
    """GETs /healthz and /metrics in turn until stopped, recording every answer.

    The requests are made by a child process, as a kubelet or Prometheus makes them from
    outside: a prober thread in this process would compete with the event loop for the
    interpreter lock and add its own waits to every answer. This thread only collects what
    the child reports (CLOCK_MONOTONIC is one clock for both processes).
    """

    def __init__(self, url: str) -> None:
        super().__init__(name="prober", daemon=True)
        self.url = url
        self.answers: list[Answer] = []
        self.halt = threading.Event()
        self._child = subprocess.Popen(
            [sys.executable, "-c", _PROBER, url],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
        )

    def run(self) -> None:
        assert self._child.stdout is not None
        for line in self._child.stdout:
            path, sent, seconds, status, body = orjson.loads(line)
            found = EVENTS.search(body.encode()) if path == "/metrics" else None
            self.answers.append(
                Answer(path, sent, seconds, status, float(found.group(1)) if found else None)
            )
        self._child.wait()

    def stop(self) -> None:
        """Ask the child to stop after its current request; `join` waits for its last answers."""
        self.halt.set()
        assert self._child.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._child.stdin.close()


# The child: GET both paths in turn until its stdin closes, one JSON line per answer.
_PROBER = """
import json, sys, threading, time, urllib.error, urllib.request
url = sys.argv[1]
halt = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), halt.set()), daemon=True).start()
while not halt.is_set():
    for path in ("/healthz", "/metrics"):
        sent = time.monotonic()
        try:
            with urllib.request.urlopen(url + path, timeout=60) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, b""
        seconds = time.monotonic() - sent
        text = body.decode() if path == "/metrics" else ""
        print(json.dumps([path, sent, seconds, status, text]), flush=True)
    halt.wait(0.01)
"""


@dataclass(frozen=True, slots=True)
class Run:
    events: int
    answers: list[Answer]  # from start-up until an answer showed the whole file processed

    def mid_batch(self) -> list[Answer]:
        """/metrics answers that saw part of the batch done: served during the batch."""
        return [a for a in self.answers if a.events is not None and 0 < a.events < self.events]

    def slowest(self, path: str) -> float:
        return max(a.seconds for a in self.answers if a.path == path)


def write_file(folder: Path, events: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "big.jsonl"
    path.write_bytes(as_jsonl(scenario(events)[:events]))
    return path


async def process_while_probing(
    folder: Path,
    *,
    events: int,
    chunk_events: int,
    flush_interval_seconds: float = 60,
    gc_freeze: bool = True,
    **source_settings: Any,
) -> Run:
    """Run the service over `folder/inbox` holding one file of `events` events, probing it."""
    settings = Settings(
        state=StateSettings(flush_interval_seconds=flush_interval_seconds),
        service=ServiceSettings(chunk_events=chunk_events, gc_freeze=gc_freeze),
    )
    metrics = Metrics(sources=["inbox"], sinks=["out"], runtime_collectors=False)
    store = SqliteStateStore(folder / "state.db")
    source = WatchSource(
        "inbox",
        {
            "path": str(folder / "inbox"),
            "poll_interval_seconds": 0.05,
            "settle_seconds": 0,
            **source_settings,
        },
    )
    service = Service(
        settings,
        pipeline_factory=lambda: build_pipeline(settings, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[JsonlSink("out", {"path": str(folder / "out.jsonl")})],
        store=store,
        owner="probe",
        metrics=metrics,
    )
    server = HttpServer(metrics, Health(), host="127.0.0.1", port=0)
    await server.start()
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    prober = Prober(server.url)
    prober.start()
    try:
        while not any(a.events == events for a in prober.answers):
            if task.done():
                task.result()
                raise AssertionError("the service ended before the file was processed")
            await asyncio.sleep(0.05)
    finally:
        prober.stop()
        await asyncio.to_thread(prober.join)
        stop.set()
        await task
        await server.stop()
        store.close()
    answers = list(prober.answers)
    done = min(a.sent for a in answers if a.events == events)
    return Run(events=events, answers=[a for a in answers if a.sent <= done])
