"""The service's HTTP endpoints: /metrics for Prometheus, /healthz and /readyz for probes.

The server runs on the same event loop as the pipeline. That is deliberate: a /healthz answer
then proves the loop that does the work is turning, and the scrape-time callbacks (session
counts, readiness) read pipeline and source state from the thread that owns it.

/healthz is liveness: it fails only when restarting the process is the right fix (the loop
is stalled, or the runtime gave up) or when the service is on its way out. /readyz is
readiness: it fails while sources connect or state is restored, and during shutdown, so a
load balancer or an orchestrator holds traffic and rollouts without killing the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from aiohttp import web

from detector.metrics import Metrics

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9108

ReadyCheck = Callable[[], bool]
# Adds more routes to the application (the approval API and session pages: detector/web).
RouteInstaller = Callable[[web.Application], None]


class Health:
    """Liveness as the runtime and the loop watcher report it.

    The runtime calls `mark_stopping` when shutdown begins and `mark_failed` when it cannot
    go on. `watch_loop` (started by HttpServer) measures how late the loop wakes a timer:
    a loop blocked by synchronous work wakes it late, and a late wake-up or a watcher that
    has not run for too long makes /healthz fail.
    """

    def __init__(
        self,
        *,
        max_loop_lag: float = 5.0,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_loop_lag = max_loop_lag
        self.check_interval = check_interval
        self._clock = clock
        self._stopping = False
        self._failure: str | None = None
        self._loop_lag = 0.0
        self._last_tick: float | None = None

    def mark_stopping(self) -> None:
        self._stopping = True

    def mark_failed(self, reason: str) -> None:
        # The first failure is the cause; later ones are usually its consequences.
        if self._failure is None:
            self._failure = reason

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def failure(self) -> str | None:
        return self._failure

    def record_loop_lag(self, seconds: float) -> None:
        """One watcher measurement: how much later than asked the loop woke a timer."""
        self._loop_lag = max(seconds, 0.0)
        self._last_tick = self._clock()

    def problems(self) -> list[str]:
        """Why the service is not live; empty when it is."""
        found: list[str] = []
        if self._failure is not None:
            found.append(f"failed: {self._failure}")
        if self._stopping:
            found.append("stopping")
        if self._loop_lag > self.max_loop_lag:
            found.append(f"event loop woke {self._loop_lag:.1f}s late (limit {self.max_loop_lag}s)")
        if self._last_tick is not None:
            # The watcher is due every check_interval; a request served before its overdue
            # wake-up has just come out of a block the lag measurement has not seen yet.
            silent = self._clock() - self._last_tick
            if silent > self.check_interval + self.max_loop_lag:
                found.append(f"event loop watcher has not run for {silent:.1f}s")
        return found

    async def watch_loop(self) -> None:
        """Measure loop lag every `check_interval` seconds until cancelled."""
        self.record_loop_lag(0.0)
        while True:
            started = self._clock()
            await asyncio.sleep(self.check_interval)
            self.record_loop_lag(self._clock() - started - self.check_interval)


class HasReadiness(Protocol):
    """What readiness needs of a source; every `detector.sources.base.Source` has it."""

    @property
    def name(self) -> str: ...

    @property
    def ready(self) -> bool: ...


def readiness_checks(
    sources: Iterable[HasReadiness], *, state_restored: ReadyCheck
) -> dict[str, ReadyCheck]:
    """The /readyz checks for a service: one per source, plus restored state."""
    checks: dict[str, ReadyCheck] = {f"source:{s.name}": _source_ready(s) for s in sources}
    checks["state"] = state_restored
    return checks


def _source_ready(source: HasReadiness) -> ReadyCheck:
    def check() -> bool:
        return source.ready

    return check


class HttpServer:
    """aiohttp server for /metrics, /healthz and /readyz.

    `port=0` binds a free port; `port` reports the bound one after `start`.
    """

    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        ready_checks: Mapping[str, ReadyCheck] | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        shutdown_timeout: float = 5.0,
        routes: Iterable[RouteInstaller] = (),
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.ready_checks: dict[str, ReadyCheck] = dict(ready_checks or {})
        self.host = host
        self._requested_port = port
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._routes = list(routes)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        for install in self._routes:
            install(app)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("HTTP server already started")
        # No access log: probes and scrapes every few seconds would drown the service's own
        # logs. Signals belong to the runtime, which decides how the whole service stops.
        runner = web.AppRunner(
            self.app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._watcher = asyncio.create_task(self.health.watch_loop(), name="loop-watcher")
        logger.info("HTTP server listening", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._runner is None:
            raise RuntimeError("HTTP server is not started")
        for address in self._runner.addresses:
            # IPv4 addresses are (host, port), IPv6 ones (host, port, flowinfo, scope_id).
            if isinstance(address, tuple):
                return int(address[1])
        raise RuntimeError("HTTP server has no bound TCP address")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render()
        # Passed as a header: aiohttp's content_type argument refuses the charset parameter.
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        problems = self.health.problems()
        if problems:
            return web.json_response({"status": "unhealthy", "problems": problems}, status=503)
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        not_ready: list[str] = []
        errors: dict[str, str] = {}
        if self.health.stopping or self.health.failure is not None:
            # Take the instance out of rotation as soon as shutdown starts.
            not_ready.append("service")
        for name, check in self.ready_checks.items():
            # A broken check means "not ready" with its error in the body, not a 500.
            try:
                ready = check()
            except Exception as exc:  # noqa: BLE001
                ready = False
                errors[name] = f"{type(exc).__name__}: {exc}"
            if not ready:
                not_ready.append(name)
        if not_ready:
            body: dict[str, Any] = {"status": "not ready", "not_ready": not_ready}
            if errors:
                body["errors"] = errors
            return web.json_response(body, status=503)
        return web.json_response({"status": "ready"})
