"""What the approval tests share: a held response of the demo's Kiro session, token files."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from detector.approvals.tokens import hash_token
from detector.core.findings import Response

T0 = datetime(2025, 12, 8, 14, 0, tzinfo=UTC)

TOKENS = {
    "alice@example.com": "tok-alice-7f3c0a9e5b2d4c18a6e0f1b2",
    "bob@example.com": "tok-bob-1d9e8c7b6a5f4e3d2c1b0a99",
    "carol@example.com": "tok-carol-0a1b2c3d4e5f60718293a4b5",
}


def response(session_id: str = "ses-kiro", *, scope: str | None = "ce-4821-fix") -> Response:
    return Response(
        action="revoke-session",
        session_id=session_id,
        event_id="evt-deletestack",
        event_time=T0,
        dry_run=False,
        reason="critical out-of-scope-action: cloudformation:DeleteStack",
        scope=scope,
        agent="kiro",
        principal="arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin/alice@example.com",
        role_arn="arn:aws:iam::111122223333:role/AWSReservedSSO_Admin",
        session_name="alice@example.com",
        source_identity=None,
        access_key_id="ASIARBCDEFGHALICE0K2",
        issued_at="2025-12-08T09:50:00Z",
        on_human_credentials=True,
        human="alice@example.com",
    )


def write_token_file(path: Path, tokens: Mapping[str, str] = TOKENS) -> Path:
    lines = [f'"{hash_token(token)}": "{person}"' for person, token in tokens.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class Clock:
    """A settable clock for expiry."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
