"""Open the approval of every decided response that needs one, at flush time.

Registered with the service's sinks, so it follows their order: the requests are written
when the batch's output is flushed, before state is saved and sources are acknowledged, and
a batch delivered twice asks again, which finds the request already open. The request is
then visible (API, CLI, session page) and decidable whether or not a responder has asked the
gate yet; when one does, `check` answers with this same request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from detector.approvals.gate import StoreApprovalGate, response_from_record


class ApprovalRequests:
    name = "approval-requests"

    def __init__(self, gate: StoreApprovalGate) -> None:
        self.gate = gate
        self._held: list[Mapping[str, Any]] = []

    async def open(self) -> None:
        return None

    async def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            # Dry-run responses are never carried out, so nobody has anything to approve.
            if record.get("type") == "response" and record.get("dry_run") is False:
                self._held.append(record)

    async def flush(self) -> None:
        while self._held:
            response = response_from_record(self._held[0])
            if self.gate.needs_approval(response):
                await self.gate.check(response)
            # Dropped only once asked: a failed store call leaves it for the retried flush.
            self._held.pop(0)

    async def close(self) -> None:
        return None
