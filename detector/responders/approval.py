"""The seam between responders and the two-person rule.

Before a responder acts on a decided response (`dry_run` false), the dispatcher asks the
approval gate whether a second person must agree first. The gate answers with the state of
that response's approval; the dispatcher acts only on `NOT_REQUIRED` or `APPROVED`, journals
`PENDING` as held, and journals `DENIED` or `EXPIRED` (with the configured default outcome
already applied by the gate) as not done. When a held approval is decided later, the gate
calls the `release` callback it was given, and the dispatcher acts then.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Protocol

from detector.core.findings import Response


class ApprovalState(enum.Enum):
    NOT_REQUIRED = "not-required"
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


Release = Callable[[Response, ApprovalState], Awaitable[None]]
"""Called by the gate when a held response is approved, denied or expires."""


class ApprovalGate(Protocol):
    """Decides whether a response needs, has, or was refused a second person's approval.

    Idempotent: asking again for the same response (same session and action) returns the
    state of the approval already open for it, never a second request.
    """

    async def check(self, response: Response) -> ApprovalState: ...

    def on_release(self, release: Release) -> None: ...


class NoApproval:
    """The default gate: nothing needs a second person."""

    async def check(self, response: Response) -> ApprovalState:
        return ApprovalState.NOT_REQUIRED

    def on_release(self, release: Release) -> None:
        return None
