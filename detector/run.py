"""Composition of `trailguard run` and `trailguard route` from validated settings."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from detector.adapters import load_adapters
from detector.config import Settings, Where
from detector.core.session_view import SessionView
from detector.core.taxonomy import SessionKind
from detector.errors import ConfigError
from detector.sinks import SINKS, DeliveryMetrics, Sink, SinkContext
from detector.sources.base import SOURCES, Source
from detector.state.store import StateStore

logger = logging.getLogger(__name__)


def build_sources(settings: Settings) -> list[Source]:
    load_adapters()
    sources: list[Source] = []
    names: set[str] = set()
    for index, raw in enumerate(settings.sources):
        kind = raw.get("type")
        if not isinstance(kind, str):
            raise ConfigError(f"{settings.source}: 'sources[{index}].type' is required")
        name = raw.get("name") or kind
        if not isinstance(name, str) or name in names:
            raise ConfigError(
                f"{settings.source}: 'sources[{index}].name' must be unique, got {name!r} again"
            )
        names.add(name)
        try:
            factory = SOURCES.get(kind)
        except KeyError as exc:
            raise ConfigError(
                f"{settings.source}: 'sources[{index}].type': {exc.args[0]}"
            ) from None
        # The factory gets the adapter's own settings; `type` and `name` belong to the runtime.
        own = {k: v for k, v in raw.items() if k not in ("type", "name")}
        sources.append(factory(name, own, where=Where(settings.source, f"sources[{index}]")))
    return sources


def sink_names(settings: Settings) -> list[str]:
    configured: tuple[Mapping[str, Any], ...] = settings.sinks or ({"type": "jsonl"},)
    return [str(raw.get("name") or raw.get("type")) for raw in configured]


def build_sinks(
    settings: Settings,
    *,
    store: StateStore | None = None,
    metrics: DeliveryMetrics | None = None,
) -> list[Sink]:
    """Sinks from `sinks:`. `store` is where paging sinks remember what they delivered;
    without one (config check) nothing is opened and they would remember in memory only."""
    load_adapters()
    configured: tuple[Mapping[str, Any], ...] = settings.sinks or ({"type": "jsonl", "path": "-"},)
    sinks: list[Sink] = []
    for index, raw in enumerate(configured):
        kind = raw.get("type")
        if not isinstance(kind, str):
            raise ConfigError(f"{settings.source}: 'sinks[{index}].type' is required")
        try:
            factory = SINKS.get(kind)
        except KeyError as exc:
            raise ConfigError(f"{settings.source}: 'sinks[{index}].type': {exc.args[0]}") from None
        own = {k: v for k, v in raw.items() if k not in ("type", "name")}
        context = SinkContext(
            source=settings.source,
            key=f"sinks[{index}]",
            public_url=settings.http.public_url,
            store=store,
            metrics=metrics,
        )
        sinks.append(factory(str(raw.get("name") or kind), own, context))
    return sinks


def check_state(settings: Settings) -> None:
    """Validate the state settings without connecting (for `config check`)."""
    load_adapters()
    from detector.state import STATE_STORES

    if settings.state.store not in STATE_STORES:
        known = ", ".join(repr(name) for name in sorted(STATE_STORES))
        raise ConfigError(
            f"{settings.source}: 'state.store' must be one of {known}, got {settings.state.store!r}"
        )
    if settings.state.store == "postgres" and not settings.state.dsn:
        raise ConfigError(f"{settings.source}: 'state.dsn' is required for the postgres store")
    if settings.state.store == "postgres":
        from detector.state import postgres_settings

        state = {"dsn": settings.state.dsn, "schema": settings.state.schema}
        postgres_settings(state, source=settings.source)


def open_store(settings: Settings) -> StateStore:
    load_adapters()
    from detector.state import STATE_STORES

    check_state(settings)
    state = settings.state
    factory = STATE_STORES.get(state.store)
    if state.store == "postgres":
        return factory({"dsn": state.dsn, "schema": state.schema}, source=settings.source)
    return factory({"path": str(state.path)}, source=settings.source)


def run_service(settings: Settings, *, scopes_path: Path | None = None) -> int:
    """Run until SIGTERM or SIGINT; 0 after a clean stop, 1 when a source or sink failed."""
    from detector.http_server import Health, HttpServer, readiness_checks
    from detector.metrics import AlertSinkMetrics, Metrics
    from detector.responders.build import build_dispatcher
    from detector.service import Service
    from detector.web.compose import people_parts, scopes_for
    from detector.wiring import load_baselines, pipeline_factory

    # Checked and loaded before anything connects: a tampered artifact stops the start.
    baselines = load_baselines(settings)
    sources = build_sources(settings)
    if not sources:
        raise ConfigError(f"{settings.source}: sources: `trailguard run` needs at least one")
    names = sink_names(settings)
    metrics = Metrics(sources=[s.name for s in sources], sinks=names)
    if baselines is not None:
        metrics.baselines_loaded(baselines.names)
        logger.info(
            "baseline loaded",
            extra={
                "path": str(baselines.artifact.directory),
                "models": list(baselines.names),
                "manifest_sha256": baselines.artifact.manifest_sha256,
            },
        )
    store = open_store(settings)
    sinks = build_sinks(
        settings, store=store, metrics=AlertSinkMetrics(metrics.registry, sinks=names)
    )
    owner = settings.service.instance or socket.gethostname()
    # Approvals and session pages: their sinks run after the configured ones, in flush order.
    people = people_parts(
        settings, store=store, scopes=scopes_for(settings, scopes_path), metrics=metrics
    )
    dispatcher = build_dispatcher(settings, store, sinks=sinks, metrics=metrics, gate=people.gate)
    service = Service(
        settings,
        pipeline_factory=pipeline_factory(
            settings,
            scopes_path=scopes_path,
            baselines=baselines.factory(settings) if baselines is not None else None,
        ),
        sources=sources,
        sinks=[*sinks, *people.sinks],
        store=store,
        owner=owner,
        metrics=metrics,
        responders=dispatcher,
    )

    def session_counts() -> Mapping[SessionKind, int]:
        counts: Counter[SessionKind] = Counter()
        for pipeline in service.pipelines():
            counts.update(pipeline.tracker.kind_counts())
        return counts

    metrics.count_sessions_with(session_counts)

    def live_session(session_id: str) -> SessionView | None:
        for pipeline in service.pipelines():
            if (view := pipeline.tracker.get(session_id)) is not None:
                return view
        return None

    people.api.live = live_session
    metrics.watch_sources(sources)
    health = Health()
    server = HttpServer(
        metrics,
        health,
        readiness_checks(sources, state_restored=lambda: service.restored),
        host=settings.http.host,
        port=settings.http.port,
        routes=people.routes,
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            health.mark_stopping()
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        try:
            await server.start()
        except OSError as exc:
            where = f"{settings.http.host}:{settings.http.port}"
            raise ConfigError(
                f"{settings.source}: http.port: cannot listen on {where}: {exc.strerror or exc}"
            ) from None
        watcher = asyncio.create_task(health.watch_loop())
        lag = asyncio.create_task(_sync_lag(metrics, sources))
        sweeper = asyncio.create_task(people.gate.run(stop))
        logger.info("trailguard running", extra={"port": server.port, "owner": owner})
        try:
            await dispatcher.open()
            await service.run(stop)
        except ConfigError:
            # A setting only a source's start can check (a watched path that went away):
            # a configuration error, exit 2, not a failure to restart on.
            raise
        except Exception as exc:
            health.mark_failed(str(exc))
            logger.exception("trailguard stopped on an error")
            return 1
        finally:
            watcher.cancel()
            lag.cancel()
            sweeper.cancel()
            await server.stop()
            await dispatcher.close()
            store.close()
        return 1 if service.failed else 0

    return asyncio.run(main())


LAG_SYNC_SECONDS = 5.0


async def _sync_lag(metrics: Any, sources: list[Source]) -> None:
    """Consumer lag is measured by the consumer thread; copy it into the gauge periodically."""
    while True:
        metrics.sync_consumer_lag(sources)
        await asyncio.sleep(LAG_SYNC_SECONDS)


def run_router(settings: Settings) -> int:
    from detector.route import Router, RouteSettings

    if not settings.route:
        raise ConfigError(f"{settings.source}: route: `trailguard route` needs a route section")
    router = Router(
        RouteSettings.parse(settings.route, source=settings.source), open_store(settings)
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stats = router.run(stop)
    logger.info(
        "route stopped",
        extra={"consumed": stats.consumed, "routed": stats.routed, "rejected": stats.rejected},
    )
    return 0
