"""The service's task and verdict routes on a loopback port, served from a thread, for the
gate tests that run the gate in this process (or as a subprocess) against a real HTTP API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector.approvals.tokens import TokenTable, hash_token
from detector.core.scope import ScopeSet
from detector.http_server import Health, HttpServer
from detector.metrics import GateVerdictMetrics, Metrics
from detector.state.store import StateStore
from detector.web.auth import Auth
from detector.web.gate_verdicts import GateVerdictsApi
from detector.web.tasks import TasksApi

TOKEN = "tok-gate-3c1d9a7e5b0f42c8a6d1"
PERSON = "gate@example.com"


@dataclass(frozen=True)
class Served:
    url: str
    token_file: Path
    metrics: Metrics


def _no_starting(*args: Any) -> Any:
    raise AssertionError("these tests start no task over HTTP")


@contextmanager
def serve(
    store: StateStore, scopes: ScopeSet, tmp_path: Path, *, cap: int = 500
) -> Iterator[Served]:
    metrics = Metrics(runtime_collectors=False)
    auth = Auth(TokenTable({hash_token(TOKEN): PERSON}), login_seconds=60)
    tasks = TasksApi(auth=auth, store=store, starter=_no_starting, scopes=scopes)
    verdicts = GateVerdictsApi(auth=auth, store=store, cap=cap, metrics=GateVerdictMetrics(metrics))
    http = HttpServer(metrics, Health(), port=0, routes=[tasks.install, verdicts.install])
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        await http.start()
        started.set()
        await stop.wait()
        await http.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30), "the HTTP server did not start"
    token_file = tmp_path / "gate.token"
    token_file.write_text(TOKEN + "\n")
    try:
        yield Served(f"http://127.0.0.1:{http.port}", token_file, metrics)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
