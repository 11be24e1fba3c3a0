"""Starting a task from the service's own configuration (for `POST /v1/tasks`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property

from detector.catalog_loader import load_catalog
from detector.config import Settings
from detector.core.catalog import RiskCatalog
from detector.core.scope import ScopeSet
from detector.core.scope_policy import PolicyTooLarge
from detector.errors import ConfigError
from detector.state.store import StateStore
from detector.state.tasks import TaskRow
from detector.tasks.mint import Credentials, start_task
from detector.tasks.policy import scope_session_policy
from detector.tasks.settings import task_settings


class TaskStarter:
    def __init__(self, settings: Settings, *, scopes: ScopeSet, store: StateStore) -> None:
        self.settings = settings
        self.own = task_settings(settings)
        self.scopes = scopes
        self.store = store

    @cached_property
    def catalog(self) -> RiskCatalog:
        return load_catalog(self.settings.catalog.overrides)

    def __call__(
        self,
        scope_name: str,
        agent: str,
        role: str | None,
        owner: str | None,
        duration: timedelta | None,
    ) -> tuple[TaskRow, Credentials]:
        """Raises ConfigError (unknown scope, no role, policy too large) or TaskError."""
        scope = self.scopes.get(scope_name)
        if scope is None:
            raise ConfigError(f"no scope {scope_name!r}")
        role_arn = role or self.own.role_arn
        if role_arn is None:
            raise ConfigError("no role to assume: give role_arn or set tasks.role_arn")
        try:
            policy = scope_session_policy(scope, self.catalog)
        except PolicyTooLarge as exc:
            raise ConfigError(str(exc)) from None
        return start_task(
            store=self.store,
            settings=self.own,
            scope=scope.name,
            policy=policy,
            agent=agent,
            role_arn=role_arn,
            owner=owner,
            duration=duration or timedelta(seconds=self.own.duration_seconds),
            now=datetime.now(UTC),
        )
