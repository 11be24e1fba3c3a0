"""What every responder is: its protocol, its outcome, its errors, and the registry.

A responder carries out one kind of decided response on AWS (deny one session, disable one
key). It is idempotent: handed the same response twice, the second time it reports
`already_applied` and changes nothing. It acts only on responses whose `dry_run` is false;
the dispatcher never hands it a dry-run one (dry-run is journaled without any AWS call).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from detector.core.findings import Response
from detector.errors import DetectorError
from detector.registry import Registry
from detector.responders.guardrails import Guardrails


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"
    DRY_RUN = "dry_run"
    REFUSED = "refused"
    FAILED = "failed"

    @property
    def alerts(self) -> bool:
        """Outcomes a person must hear about: a revocation that was wanted and did not happen."""
        return self in (Outcome.REFUSED, Outcome.FAILED)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutcome:
    """What became of one response, with the evidence: what was written where, and when."""

    outcome: Outcome
    responder: str
    reason: str
    target: str | None = None  # the role, user or key acted on
    policy_name: str | None = None
    policy: Mapping[str, Any] | None = None  # the document read back and verified
    key: str | None = None  # the deny key used, in words
    fallback: bool = False  # a less narrow key than the first choice, to fit the budget
    pruned: int = 0  # expired entries removed while writing
    policy_size: int | None = None
    attempts: int = 1
    started_at: datetime | None = None
    verified_at: datetime | None = None
    retriable: bool = False  # for FAILED: would trying again later help?
    extra: Mapping[str, Any] = field(default_factory=dict)


class ResponderError(DetectorError):
    """A responder could not act. `retriable` says whether trying again may help: throttling
    and an unreachable endpoint are, AccessDenied and a missing role are not."""

    def __init__(self, message: str, *, retriable: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.code = code


class Responder(Protocol):
    """One kind of response, carried out on AWS.

    `required_permissions` lists every IAM action `respond` may call, so the deploy/ policy
    can be generated from the registry and kept equal to it.
    """

    name: str
    required_permissions: ClassVar[frozenset[str]]
    guardrails: Guardrails
    # TrailGuard's own identity (ARN patterns), learned at open; the guardrails refuse it.
    own_arns: frozenset[str]

    def accepts(self, response: Response) -> bool:
        """Whether this responder handles this response (its action, its roles)."""
        ...

    async def open(self) -> None:
        """Connect, and learn the detector's own identity so it is never revoked."""
        ...

    async def respond(self, response: Response) -> ResponseOutcome:
        """Act on one response; raise ResponderError when it could not."""
        ...

    async def close(self) -> None: ...


ResponderFactory = Callable[[str, Mapping[str, Any], str, str], Responder]
"""(name, the responder's own settings, the config file, the key they sit under) -> responder;
the factory validates its settings with `detector.config.parse_section`."""


@dataclass(frozen=True, slots=True)
class ResponderType:
    factory: ResponderFactory
    required_permissions: frozenset[str]


RESPONDERS: Registry[ResponderType] = Registry("responder")
