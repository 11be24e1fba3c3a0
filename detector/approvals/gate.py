"""`StoreApprovalGate`: the ApprovalGate the responders ask, backed by the state store.

Every call to the store runs in a worker thread (`asyncio.to_thread`), as the service does
for its saves. Decisions come from three places: the HTTP API and the session page (through
`decide`, which hands the decision to the responders at once), the CLI (which writes the
store directly; a running service finds the decision at its next `sweep`), and the clock
(`sweep` expires due requests with the default outcome). A decision is handed to the
responders once: the row is marked released after every release callback returned, and a
callback that failed is tried again at the next sweep, which the idempotent responders allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.approvals import decisions
from detector.approvals.exceed import EXCEED_SCOPE, ExceedRequest
from detector.approvals.settings import ApprovalSettings
from detector.core.findings import Response
from detector.core.parse import parse_time
from detector.metrics import ApprovalMetrics
from detector.responders.approval import ApprovalState, Release
from detector.state.approvals import ApprovalRow
from detector.state.store import StateStore

logger = logging.getLogger(__name__)


def request_key(response: Response) -> str:
    """One request per session and action, however often the response is decided again."""
    return f"{response.session_id}/{response.action}"


def new_approval_id() -> str:
    # Short enough to type into `trailguard approvals approve`, random enough not to guess.
    return "ap-" + secrets.token_hex(6)


class StoreApprovalGate:
    """Holds responses that need a second person; see detector/approvals/decisions.py.

    `required` puts every response behind the rule (`responses.approval: required`);
    `scopes` names the task scopes whose responses wait (`on_violation: approve`).
    """

    def __init__(
        self,
        store: StateStore,
        settings: ApprovalSettings,
        *,
        required: bool,
        scopes: frozenset[str] = frozenset(),
        metrics: ApprovalMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = new_approval_id,
    ) -> None:
        self.store = store
        self.settings = settings
        self.required = required
        self.scopes = scopes
        self.metrics = metrics
        self._clock = clock
        self._new_id = new_id
        self._releases: list[Release] = []

    def needs_approval(self, response: Response) -> bool:
        return self.required or (response.scope is not None and response.scope in self.scopes)

    # -- ApprovalGate -----------------------------------------------------------------------

    async def check(self, response: Response) -> ApprovalState:
        if not self.needs_approval(response):
            return ApprovalState.NOT_REQUIRED
        row = await self.open(response)
        now = self._clock()
        expired = decisions.expiry(row, now, default_outcome=self.settings.default_outcome)
        if expired is not None:
            row = await self._write(row, expired, outcome="expired")
        return decisions.state_of(row)

    def on_release(self, release: Release) -> None:
        self._releases.append(release)

    # -- requests and decisions -------------------------------------------------------------

    async def open(self, response: Response) -> ApprovalRow:
        """The approval request for `response`, opened now unless one exists."""
        now = self._clock()
        wanted = ApprovalRow(
            approval_id=self._new_id(),
            request_key=request_key(response),
            session_id=response.session_id,
            action=response.action,
            reason=response.reason,
            scope=response.scope,
            agent=response.agent,
            human=response.human,
            principal=response.principal,
            requested_at=now,
            expires_at=now + timedelta(seconds=self.settings.expire_seconds),
            response=response.to_record(),
        )
        row = await asyncio.to_thread(self.store.open_approval, wanted)
        if row.approval_id == wanted.approval_id:
            self._count("requested")
            logger.info(
                "approval requested",
                extra={"approval": row.approval_id, "session": row.session_id},
            )
        return row

    async def open_exceed(self, request: ExceedRequest, *, requested_by: str) -> ApprovalRow:
        """The held request of an agent to exceed its scope, opened now unless one exists for
        the same key; returned as stored (possibly already decided)."""
        now = self._clock()
        wanted = ApprovalRow(
            approval_id=self._new_id(),
            request_key=request.key(),
            session_id=request.session_id,
            action=EXCEED_SCOPE,
            reason=request.reason(),
            scope=request.scope,
            agent=request.agent,
            human=request.human,
            principal=None,
            requested_at=now,
            expires_at=now + timedelta(seconds=self.settings.expire_seconds),
            response=request.details(requested_by=requested_by),
        )
        row = await asyncio.to_thread(self.store.open_approval, wanted)
        if row.approval_id == wanted.approval_id:
            self._count("requested")
        expired = decisions.expiry(row, now, default_outcome=self.settings.default_outcome)
        if expired is not None:
            row = await self._write(row, expired, outcome="expired")
        return row

    async def decide(
        self, approval_id: str, *, approve: bool, person: str, note: str | None = None
    ) -> ApprovalRow:
        """Record `person`'s decision and hand it to the responders. Raises UnknownApproval,
        SelfApproval or AlreadyDecided (also for a request that expired first)."""
        row = await asyncio.to_thread(self.store.approval, approval_id)
        if row is None:
            raise decisions.UnknownApproval(f"no approval {approval_id!r}")
        now = self._clock()
        expired = decisions.expiry(row, now, default_outcome=self.settings.default_outcome)
        if expired is not None:
            row = await self._write(row, expired, outcome="expired")
            await self._release(row)
        try:
            decision = decisions.decide(row, approve=approve, person=person, now=now, note=note)
        except decisions.ApprovalError:
            self._count("refused")
            raise
        if decision is None:
            return row
        row = await self._write(row, decision, outcome=decision.status)
        if row.decided_by != person:
            # Somebody else decided between our read and our write; theirs stands.
            return await self.decide(approval_id, approve=approve, person=person, note=note)
        await self._release(row)
        return row

    async def revoke_now(
        self, response: Response, *, person: str, note: str | None = None
    ) -> ApprovalRow:
        """A person revokes the session themselves (the session page's Revoke): the request
        for `response` is opened if there is none and approved by `person` at once, under the
        same rule (never the session's own person; a revocation already denied stays so)."""
        if decisions.same_person(person, response.human):
            self._count("refused")
            raise decisions.SelfApproval(
                f"{person} is the person session {response.session_id} acts for"
            )
        row = await self.open(response)
        return await self.decide(row.approval_id, approve=True, person=person, note=note)

    async def sweep(self) -> int:
        """Expire due requests and release decisions not yet released; returns how many."""
        now = self._clock()
        pending = await asyncio.to_thread(self.store.approvals, status="pending", limit=1000)
        for row in pending:
            expired = decisions.expiry(row, now, default_outcome=self.settings.default_outcome)
            if expired is not None:
                await self._write(row, expired, outcome="expired")
        if not self._releases:
            return 0  # nobody to hand decisions to; they stay for a service that has
        done = await asyncio.to_thread(self.store.unreleased_approvals, limit=1000)
        for row in done:
            await self._release(row)
        return len(done)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every `sweep_seconds` until `stop` is set."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                # The store may be down for a moment; the next sweep tries again.
                logger.exception("approval sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.sweep_seconds)

    # -- internals --------------------------------------------------------------------------

    async def _write(
        self, row: ApprovalRow, decision: decisions.Decision, *, outcome: str
    ) -> ApprovalRow:
        stored = await asyncio.to_thread(
            self.store.decide_approval,
            row.approval_id,
            status=decision.status,
            outcome=decision.outcome,
            decided_by=decision.decided_by,
            decided_at=decision.decided_at,
            note=decision.note,
        )
        if stored is None:  # pragma: no cover - rows are never deleted
            raise decisions.UnknownApproval(f"approval {row.approval_id} vanished")
        if stored.decided_by == decision.decided_by and stored.decided_at == decision.decided_at:
            self._count(outcome)
            logger.info(
                "approval decided",
                extra={
                    "approval": stored.approval_id,
                    "status": stored.status,
                    "by": stored.decided_by,
                },
            )
        return stored

    async def _release(self, row: ApprovalRow) -> None:
        # With nobody to hand it to (the CLI, a service without responders) the decision
        # stays unreleased for a service whose responders will act on it.
        if row.pending or row.released_at is not None or not self._releases:
            return
        if row.action == EXCEED_SCOPE:
            # The gate reads the decision when the agent runs the command again; a responder
            # has nothing to do with it.
            await asyncio.to_thread(
                self.store.mark_approval_released, row.approval_id, self._clock()
            )
            return
        response = response_from_record(row.response)
        state = decisions.state_of(row)
        for release in self._releases:
            await release(response, state)
        await asyncio.to_thread(self.store.mark_approval_released, row.approval_id, self._clock())

    def count_refused(self) -> None:
        """A decision refused before it reached the gate (no or a bad token, stale form)."""
        self._count("refused")

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.approval(outcome)


def response_from_record(record: Mapping[str, Any]) -> Response:
    """The held Response back from its contract record (as stored with the request)."""
    target = record.get("target") or {}
    return Response(
        action=record["action"],
        session_id=record["session_id"],
        event_id=record["event_id"],
        event_time=parse_time(record["event_time"]),
        dry_run=bool(record["dry_run"]),
        reason=record["reason"],
        scope=record.get("scope"),
        agent=target.get("agent"),
        principal=target.get("principal"),
        role_arn=target.get("role_arn"),
        session_name=target.get("session_name"),
        source_identity=target.get("source_identity"),
        access_key_id=target.get("access_key_id"),
        issued_at=target.get("issued_at"),
        on_human_credentials=bool(target.get("on_human_credentials")),
        human=target.get("human"),
    )
