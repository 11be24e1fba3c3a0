"""Who is asking: a bearer token in the Authorization header (API clients, the CLI's peers),
or a login cookie set by the session page's login form (people in a browser).

The cookie holds a random login id, never the token; the login lives in this process's
memory, so a restart asks people to log in again. A form posted with the cookie must carry
the login's CSRF value as well, and the cookie is SameSite=Strict and HttpOnly.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from detector.approvals.tokens import TokenTable

COOKIE = "trailguard_login"
MAX_LOGINS = 10_000


@dataclass(frozen=True, slots=True)
class Viewer:
    person: str
    # Set for a cookie login: what its forms must send back. None for a bearer token.
    csrf: str | None = None


@dataclass(slots=True)
class _Login:
    person: str
    csrf: str
    expires: float


class Auth:
    def __init__(
        self,
        tokens: TokenTable,
        *,
        login_seconds: int,
        secure_cookie: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self.login_seconds = login_seconds
        self.secure_cookie = secure_cookie
        self._clock = clock
        self._logins: dict[str, _Login] = {}

    def viewer(self, request: web.Request) -> Viewer | None:
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer":
                return None
            person = self.tokens.person(token.strip())
            return Viewer(person) if person else None
        login_id = request.cookies.get(COOKIE)
        if not login_id:
            return None
        login = self._logins.get(login_id)
        if login is None:
            return None
        if login.expires <= self._clock():
            del self._logins[login_id]
            return None
        return Viewer(login.person, csrf=login.csrf)

    def login(self, token: str, response: web.StreamResponse) -> str | None:
        """Check `token`; on success set the login cookie on `response`, return the person."""
        person = self.tokens.person(token.strip())
        if person is None:
            return None
        now = self._clock()
        for stale in [k for k, v in self._logins.items() if v.expires <= now]:
            del self._logins[stale]
        if len(self._logins) >= MAX_LOGINS:
            # Bounded memory: the oldest login goes first.
            del self._logins[next(iter(self._logins))]
        login_id = secrets.token_urlsafe(32)
        self._logins[login_id] = _Login(person, secrets.token_urlsafe(24), now + self.login_seconds)
        response.set_cookie(
            COOKIE,
            login_id,
            max_age=self.login_seconds,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
        )
        return person

    def logout(self, request: web.Request, response: web.StreamResponse) -> None:
        login_id = request.cookies.get(COOKIE)
        if login_id:
            self._logins.pop(login_id, None)
        response.del_cookie(COOKIE, path="/")


def csrf_ok(viewer: Viewer, sent: str | None) -> bool:
    """A bearer-token request needs no CSRF value; a cookie login's form must echo its own."""
    if viewer.csrf is None:
        return True
    return sent is not None and hmac.compare_digest(viewer.csrf.encode(), sent.encode())


def unauthorized() -> web.Response:
    """The API's answer to a request without a valid bearer token."""
    return web.json_response(
        {"error": "a valid bearer token is required"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="trailguard"'},
    )


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
