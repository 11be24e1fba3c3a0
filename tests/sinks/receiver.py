"""A real HTTP receiver on 127.0.0.1 standing in for PagerDuty, Slack, a webhook endpoint
or Alertmanager's API: it records every request and answers as scripted."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass(slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(slots=True)
class Receiver:
    """Answers each request with the next scripted (status, delay) and then 2xx."""

    requests: list[Received] = field(default_factory=list)
    script: list[tuple[int, float]] = field(default_factory=list)
    ok_status: int = 202
    runner: web.AppRunner | None = None
    port: int = 0

    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.headers.get("x-answer") == "ok"]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, delay = self.script.pop(0) if self.script else (self.ok_status, 0.0)
        received = Received(request.path, {k.lower(): v for k, v in request.headers.items()}, body)
        received.headers["x-answer"] = "ok" if status < 300 else str(status)
        self.requests.append(received)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
