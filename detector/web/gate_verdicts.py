"""`POST /v1/gate/verdicts` and `GET /v1/gate/verdicts`: the pre-flight gate's verdicts.

The gate sends every verdict it reaches (allowed and blocked) with a bearer token, the same
tokens as the approval and task APIs. A verdict is stored once per id, which the gate makes:
the first send answers 201, a retried one 200 with what was stored, and only the first is
counted. A blocked verdict also puts its session on the session list, so a session whose
calls were all stopped before they ran (and so never reached CloudTrail) can be found.

Body (unknown keys are ignored, so an older service accepts a newer gate's verdicts):

    {"id": "gv-<32 hex>", "time": "2026-03-02T10:00:00.123456Z", "decision": "block",
     "reason": "...", "session_id": "...", "task_id": "...", "access_key_id": "ASIA...",
     "agent": "kiro", "owner": "alice@example.com", "scope": "ce-4821-fix",
     "command": "aws ...", "tool_name": "execute_bash", "hook": "kiro",
     "calls": [{...}, ...], "notes": ["..."]}
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from detector.metrics import GateVerdictMetrics
from detector.state.approvals import SessionSummary
from detector.state.gate_verdicts import BLOCK, DECISIONS, GateVerdictRow
from detector.state.store import StateStore
from detector.web.auth import Auth, json_error, unauthorized

VERDICT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
MAX_COMMAND = 65536
MAX_TEXT = 16384
MAX_NAME = 256
MAX_ITEMS = 256
MAX_LISTED = 200
MAX_DEPTH = 16
NAMES = ("session_id", "task_id", "agent", "owner", "scope", "tool_name", "hook")


class VerdictError(ValueError):
    """The body is not a verdict; the message names the key as the gate writes it."""


def parse_verdict(body: object, *, sent_by: str | None, received_at: datetime) -> GateVerdictRow:
    """The row for a posted verdict, or VerdictError saying what is wrong with it."""
    if not isinstance(body, dict):
        raise VerdictError("the body must be a JSON object")
    verdict_id = body.get("id")
    if not isinstance(verdict_id, str) or VERDICT_ID.fullmatch(verdict_id) is None:
        raise VerdictError("'id' must be 8 to 64 letters, digits and . _ : - (the gate's id)")
    decision = body.get("decision")
    if decision not in DECISIONS:
        raise VerdictError(f"'decision' must be one of {', '.join(DECISIONS)}")
    reason = _text(body, "reason", MAX_TEXT, required=True)
    names = {key: _text(body, key, MAX_NAME) for key in NAMES}
    session = names["session_id"] or names["task_id"]
    if session is None:
        raise VerdictError("'session_id' or 'task_id' is required")
    key = body.get("access_key_id")
    if key is not None and (not isinstance(key, str) or ACCESS_KEY_ID.fullmatch(key) is None):
        raise VerdictError("'access_key_id' must be an AWS access key id (never the secret)")
    calls = _items(body, "calls", dict)
    notes = _items(body, "notes", str)
    return GateVerdictRow(
        verdict_id=verdict_id,
        session_id=session,
        decision=str(decision),
        reason=str(reason),
        decided_at=_time(body.get("time")),
        received_at=received_at,
        task_id=names["task_id"],
        access_key_id=key,
        agent=names["agent"],
        owner=names["owner"],
        scope=names["scope"],
        command=_text(body, "command", MAX_COMMAND),
        tool_name=names["tool_name"],
        hook=names["hook"],
        sent_by=sent_by,
        detail={"calls": _clean(calls), "notes": _clean(notes)},
    )


def session_summary(row: GateVerdictRow) -> SessionSummary | None:
    """What a blocked verdict tells the session list about its session."""
    if row.decision != BLOCK:
        return None
    return SessionSummary(
        session_id=row.session_id,
        agent=row.agent,
        human=row.owner,
        principal=None,
        scope=row.scope,
        on_human_credentials=False,
        last_at=row.decided_at.replace(microsecond=0),
    )


class GateVerdictsApi:
    def __init__(
        self,
        *,
        auth: Auth,
        store: StateStore,
        cap: int,
        metrics: GateVerdictMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.auth = auth
        self.store = store
        self.cap = cap
        self.metrics = metrics
        self._clock = clock

    def install(self, app: web.Application) -> None:
        app.router.add_post("/v1/gate/verdicts", self._record)
        app.router.add_get("/v1/gate/verdicts", self._list)

    async def _record(self, request: web.Request) -> web.Response:
        viewer = self.auth.viewer(request)
        # A login cookie is a person at the pages, not a gate: writes need the bearer token.
        if viewer is None or viewer.csrf is not None:
            return unauthorized()
        try:
            body: Any = await request.json()
        except (ValueError, RecursionError):
            return json_error(400, "the body must be a JSON object")
        try:
            row = parse_verdict(body, sent_by=viewer.person, received_at=self._clock())
        except VerdictError as exc:
            return json_error(400, str(exc))
        stored, created = await asyncio.to_thread(
            self.store.record_gate_verdict, row, cap=self.cap, summary=session_summary(row)
        )
        if created and self.metrics is not None:
            self.metrics.verdict(stored.decision)
        return web.json_response({"verdict": stored.to_record()}, status=201 if created else 200)

    async def _list(self, request: web.Request) -> web.Response:
        if self.auth.viewer(request) is None:
            return unauthorized()
        decision = request.query.get("decision")
        if decision is not None and decision not in DECISIONS:
            return json_error(400, f"decision must be one of {', '.join(DECISIONS)}")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return json_error(400, "limit must be a whole number")
        if not 1 <= limit <= MAX_LISTED:
            return json_error(400, f"limit must be 1 to {MAX_LISTED}")
        rows = await asyncio.to_thread(
            self.store.gate_verdicts,
            session_id=request.query.get("session"),
            task_id=request.query.get("task"),
            decision=decision,
            limit=limit,
        )
        return web.json_response({"verdicts": [r.to_record() for r in rows]})


def _text(body: Mapping[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or (value == "" and not required):
        if required:
            raise VerdictError(f"'{key}' is required")
        return None
    if not isinstance(value, str):
        raise VerdictError(f"'{key}' must be a string")
    if len(value) > limit:
        raise VerdictError(f"'{key}' is longer than {limit} characters")
    return str(_clean(value))


def _items(body: Mapping[str, Any], key: str, kind: type) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        what = "objects" if kind is dict else "strings"
        raise VerdictError(f"'{key}' must be a list of {what}")
    if len(value) > MAX_ITEMS:
        raise VerdictError(f"'{key}' has more than {MAX_ITEMS} items")
    return value


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise VerdictError("'time' is required: the gate's ISO 8601 time with its zone")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise VerdictError(f"'time' {value[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise VerdictError("'time' must carry its zone (e.g. ...Z)")
    return moment.astimezone(UTC)


def _clean(value: Any, depth: int = 0) -> Any:
    """What the stores can hold: a lone surrogate (from a command line that was not UTF-8)
    becomes '?', NUL (which PostgreSQL text and jsonb cannot hold) U+FFFD, and a number
    that is not finite null."""
    if depth > MAX_DEPTH:
        raise VerdictError(f"'calls' is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
