"""A verdict as the gate journals it and sends it to the service (`POST /v1/gate/verdicts`).

One record serves both: the journal line is the body sent, plus whether the send worked.
The verdict id is random and made by the gate, so the service stores a verdict once however
often it arrives. Sending never changes the verdict: it happens after the decision, and a
failure is returned as text for the journal and stderr.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detector.gate.decide import Verdict
from detector.gate.service import Service, ServiceError

SEND_TIMEOUT_SECONDS = 1.0
_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Who:
    """Who acts, for whom, in which session and task, with which credentials (key id only)."""

    agent: str
    owner: str | None
    session_id: str
    task_id: str | None = None
    access_key_id: str | None = None


def new_verdict_id() -> str:
    return "gv-" + os.urandom(16).hex()


def looks_like_key_id(value: str) -> bool:
    """An access key id (AKIA..., ASIA...), never anything that could be a secret key."""
    return _KEY_ID.fullmatch(value) is not None


def verdict_record(
    verdict: Verdict,
    *,
    verdict_id: str,
    at: datetime,
    hook: str,
    tool_name: str | None,
    line: str | None,
    who: Who,
) -> dict[str, Any]:
    return {
        "id": verdict_id,
        "time": at.isoformat().replace("+00:00", "Z"),
        "hook": hook,
        "tool_name": tool_name,
        "command": line,
        "task": who.task_id,
        "task_id": who.task_id,
        "session_id": who.session_id,
        "agent": who.agent,
        "owner": who.owner,
        "access_key_id": who.access_key_id,
        **verdict.to_dict(),
    }


def send(service: Service, record: dict[str, Any]) -> str | None:
    """POST the verdict; None once the service has it, else what went wrong."""
    try:
        answer = service.call("POST", "/v1/gate/verdicts", record, timeout=SEND_TIMEOUT_SECONDS)
    except ServiceError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - the verdict stands whatever the send did
        return f"{type(exc).__name__}: {exc}"
    stored = answer.get("verdict") if isinstance(answer, dict) else None
    if not isinstance(stored, dict) or stored.get("id") != record["id"]:
        return "the service answered without the verdict"
    return None
