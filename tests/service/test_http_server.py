"""The HTTP endpoints, served on a free loopback port and queried with a real client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from detector.http_server import Health, HttpServer, readiness_checks
from detector.metrics import Metrics


@dataclass
class FakeSource:
    """Only what readiness reads from a Source."""

    name: str
    ready: bool = False


@dataclass
class Flags:
    restored: bool = False


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
def source() -> FakeSource:
    return FakeSource("kafka-main")


@pytest.fixture
def flags() -> Flags:
    return Flags()


@pytest.fixture
async def server(health: Health, source: FakeSource, flags: Flags) -> AsyncIterator[HttpServer]:
    metrics = Metrics(sources=[source.name])
    checks = readiness_checks([source], state_restored=lambda: flags.restored)
    server = HttpServer(metrics, health, checks, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def get(server: HttpServer, path: str) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as client, client.get(server.url + path) as response:
        body: Any
        if response.content_type == "application/json":
            body = await response.json()
        else:
            body = await response.text()
        return response.status, response.headers["Content-Type"], body


async def test_binds_a_free_port_when_asked_for_port_zero(server: HttpServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


async def test_metrics_serves_the_exposition(server: HttpServer) -> None:
    status, content_type, body = await get(server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert "trailguard_build_info{" in body
    assert 'trailguard_events_total{source="kafka-main"} 0.0' in body


async def test_healthz_is_ok_while_running(server: HttpServer) -> None:
    status, _, body = await get(server, "/healthz")
    assert (status, body) == (200, {"status": "ok"})


async def test_healthz_fails_once_stopping(server: HttpServer, health: Health) -> None:
    health.mark_stopping()
    status, _, body = await get(server, "/healthz")
    assert status == 503
    assert body == {"status": "unhealthy", "problems": ["stopping"]}


async def test_healthz_reports_the_first_failure(server: HttpServer, health: Health) -> None:
    health.mark_failed("state store unreachable")
    health.mark_failed("sink closed")
    status, _, body = await get(server, "/healthz")
    assert status == 503
    assert body["problems"] == ["failed: state store unreachable"]


async def test_readyz_waits_for_sources_and_state(
    server: HttpServer, source: FakeSource, flags: Flags
) -> None:
    status, _, body = await get(server, "/readyz")
    assert status == 503
    assert body == {"status": "not ready", "not_ready": ["source:kafka-main", "state"]}

    source.ready = True
    status, _, body = await get(server, "/readyz")
    assert (status, body["not_ready"]) == (503, ["state"])

    flags.restored = True
    status, _, body = await get(server, "/readyz")
    assert (status, body) == (200, {"status": "ready"})


async def test_readyz_fails_during_shutdown(
    server: HttpServer, health: Health, source: FakeSource, flags: Flags
) -> None:
    source.ready = flags.restored = True
    health.mark_stopping()
    status, _, body = await get(server, "/readyz")
    assert (status, body["not_ready"]) == (503, ["service"])


async def test_a_raising_readiness_check_is_not_ready(
    server: HttpServer, source: FakeSource
) -> None:
    def broken() -> bool:
        raise ConnectionError("broker gone")

    source.ready = True
    server.ready_checks = {"state": broken}
    status, _, body = await get(server, "/readyz")
    assert status == 503
    assert body["not_ready"] == ["state"]
    assert body["errors"] == {"state": "ConnectionError: broker gone"}


async def test_stop_closes_the_port(health: Health) -> None:
    server = HttpServer(Metrics(runtime_collectors=False), health, port=0)
    await server.start()
    url = server.url
    await server.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.get(url + "/healthz")


async def test_start_twice_is_refused(server: HttpServer) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        await server.start()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_late_loop_wake_up_is_unhealthy() -> None:
    health = Health(max_loop_lag=5.0, check_interval=1.0, clock=FakeClock())
    health.record_loop_lag(0.2)
    assert health.problems() == []
    health.record_loop_lag(12.0)
    assert health.problems() == ["event loop woke 12.0s late (limit 5.0s)"]


def test_a_silent_loop_watcher_is_unhealthy() -> None:
    clock = FakeClock()
    health = Health(max_loop_lag=5.0, check_interval=1.0, clock=clock)
    health.record_loop_lag(0.0)
    clock.now += 5.5
    assert health.problems() == []
    clock.now += 3.0
    assert health.problems() == ["event loop watcher has not run for 8.5s"]


def test_without_a_watcher_only_the_state_counts() -> None:
    health = Health(clock=FakeClock())
    assert health.problems() == []
    health.mark_stopping()
    assert health.problems() == ["stopping"]
