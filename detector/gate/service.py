"""The gate's calls to the TrailGuard service: one JSON request each, with the standard
library and a short timeout (the gate runs before every tool call and must answer quickly
either way); see `detector.gate.http_client` for how the request is made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ServiceError(Exception):
    """The service could not be reached, refused the call, or answered something else."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """Where the service is and the bearer token to show it."""

    url: str
    token: str

    def call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, timeout: float
    ) -> Any:
        """The decoded JSON answer; ServiceError for anything but a 2xx JSON answer."""
        return request_json(method, self.url.rstrip("/") + path, self.token, body, timeout)


def configured(url: str | None, token_file: Path | None) -> tuple[Service | None, str | None]:
    """(the service, None), or (None, why not) when one is named but cannot be used, or
    (None, None) when none is named."""
    if not url:
        return None, None
    if token_file is None:
        return None, f"no token for the service at {url} (--token-file or TRAILGUARD_TOKEN_FILE)"
    try:
        token = token_file.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        return None, f"the token file {token_file} cannot be read ({exc})"
    return Service(url=url, token=token), None


def request_json(
    method: str, url: str, token: str, body: Mapping[str, Any] | None, timeout: float
) -> Any:
    from detector.gate.http_client import HttpError, request

    if not url.startswith(("http://", "https://")):
        raise ServiceError("the service URL must start with http:// or https://")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        return json.loads(request(method, url, headers, data, timeout))
    except HttpError as exc:
        try:
            detail = json.loads(exc.body).get("error", "")
        except (ValueError, AttributeError):
            detail = ""
        raise ServiceError(f"HTTP {exc.status} {detail}".strip()) from None
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{type(exc).__name__}: {exc}") from None


def dumps(record: Mapping[str, Any]) -> bytes:
    """JSON of a record as UTF-8; text that is not valid Unicode (a lone surrogate from a
    non-UTF-8 argument) is written as escapes instead of failing."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record, separators=(",", ":")).encode("ascii")
