"""The response a person's Revoke on the session page stands for: a `revoke-session` of
exactly that session, targeted from what attribution knows about it now, or from the
revocation already decided for it when the session is no longer tracked."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from detector.approvals.gate import response_from_record
from detector.core.findings import Response
from detector.core.session_view import SessionView


def manual_revocation(
    session_id: str,
    *,
    live: SessionView | None,
    decided: Mapping[str, Any] | None,
    scope: str | None,
    person: str,
    now: datetime,
    dry_run: bool,
) -> Response | None:
    """None when nothing is known to target the session with."""
    reason = f"revoked from the session page by {person}"
    if live is not None:
        return Response(
            action="revoke-session",
            session_id=session_id,
            event_id=f"manual:{session_id}",
            event_time=now,
            dry_run=dry_run,
            reason=reason,
            scope=scope,
            agent=live.agent,
            principal=live.principal_arn,
            role_arn=live.role_arn,
            session_name=live.session_name,
            source_identity=live.source_identity,
            access_key_id=live.access_key_id,
            issued_at=live.issued_at,
            on_human_credentials=live.on_human_credentials,
            human=live.human,
        )
    if decided is not None:
        return dataclasses.replace(
            response_from_record(decided), dry_run=dry_run, reason=reason, event_time=now
        )
    return None
