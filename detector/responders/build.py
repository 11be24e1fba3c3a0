"""Responders and their dispatcher from `responses.responders:` in the settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from detector.adapters import load_adapters
from detector.config import Settings
from detector.errors import ConfigError
from detector.metrics import Metrics
from detector.responders.approval import ApprovalGate
from detector.responders.base import RESPONDERS, Responder
from detector.responders.dispatch import Dispatcher, Emit
from detector.sinks import Sink
from detector.state.store import StateStore


def build_responders(settings: Settings) -> list[Responder]:
    load_adapters()
    responders: list[Responder] = []
    names: set[str] = set()
    for index, raw in enumerate(settings.responses.responders):
        key = f"responses.responders[{index}]"
        kind = raw.get("type")
        if not isinstance(kind, str):
            raise ConfigError(f"{settings.source}: {key}.type: required")
        try:
            kind_of = RESPONDERS.get(kind)
        except KeyError as exc:
            raise ConfigError(f"{settings.source}: {key}.type: {exc.args[0]}") from None
        name = raw.get("name") or kind
        if not isinstance(name, str) or name in names:
            raise ConfigError(f"{settings.source}: {key}.name: {name!r} is not unique")
        names.add(name)
        own = {k: v for k, v in raw.items() if k not in ("type", "name")}
        responders.append(kind_of.factory(name, own, settings.source, key))
    return responders


def sink_emitter(sinks: Sequence[Sink]) -> Emit:
    """Outcome records go to every sink, like the batch's own records."""

    async def emit(records: Sequence[Mapping[str, Any]]) -> None:
        for sink in sinks:
            await sink.write(records)

    return emit


def build_dispatcher(
    settings: Settings,
    store: StateStore,
    *,
    sinks: Sequence[Sink],
    metrics: Metrics | None = None,
    gate: ApprovalGate | None = None,
) -> Dispatcher:
    return Dispatcher(
        build_responders(settings),
        store,
        enabled=settings.responses.enabled,
        gate=gate,
        emit=sink_emitter(sinks),
        metrics=metrics,
    )


def required_permissions() -> frozenset[str]:
    """Every IAM action any registered responder may call: what deploy/ grants."""
    load_adapters()
    actions: set[str] = set()
    for name in RESPONDERS:
        actions |= RESPONDERS.get(name).required_permissions
    return frozenset(actions)
