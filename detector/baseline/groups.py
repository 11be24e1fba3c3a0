"""Which groups an event's principal belongs to, most specific first, for back-off.

A session seen for the first time has no history of its own; its role (or user), its agent
kind, its scope and its account do. Baselines look a value up in this chain and fall back
to the next group where the more specific one knows too little:

    session:<id>                 the credential set itself (online only: sessions end)
    role:<role arn>              a role session's role, session name stripped
    user:<principal arn>         an IAM user, root, federated or other non-role principal
    service:<host>               an AWS service calling on its own behalf (no principal ARN)
    agent:<name>                 the agent kind, for agent sessions
    scope:<name>                 the task scope bound to the session
    account:<id>                 the account the principal belongs to
    global                       everything
"""

from __future__ import annotations

from detector.core.policy import EventContext
from detector.core.taxonomy import SessionKind

GLOBAL = "global"
# Group kinds in back-off order; "session" is never saved in an artifact.
LEVELS: tuple[str, ...] = (
    "session",
    "role",
    "user",
    "service",
    "agent",
    "scope",
    "account",
    "global",
)
PRINCIPAL_LEVELS = frozenset({"role", "user", "service"})


def group_chain(ctx: EventContext) -> tuple[str, ...]:
    """The groups of `ctx`'s session, most specific first, always ending in "global"."""
    session = ctx.session
    chain = [f"session:{session.session_id}"]
    if session.role_arn:
        chain.append(f"role:{session.role_arn}")
    elif session.principal_arn:
        chain.append(f"user:{session.principal_arn}")
    elif ctx.event.actor.invoked_by:
        chain.append(f"service:{ctx.event.actor.invoked_by}")
    if session.kind is SessionKind.AGENT and session.agent:
        chain.append(f"agent:{session.agent}")
    if ctx.scope:
        chain.append(f"scope:{ctx.scope}")
    account = session.account_id or ctx.event.account_id
    if account:
        chain.append(f"account:{account}")
    chain.append(GLOBAL)
    return tuple(chain)


def level(group: str) -> str:
    """The kind of a group: "role:arn:aws:iam::1:role/x" -> "role"."""
    return group.split(":", 1)[0]


def label(group: str) -> str:
    """A short name on-call recognises: a role's or user's name, an agent kind, an account."""
    kind, _, value = group.partition(":")
    if kind in ("role", "user"):
        name = value.rsplit("/", 1)[-1]
        if name.endswith(":root") or value.endswith(":root"):
            return f"the root user of {value.split(':')[4]}"
        return name
    if kind == "agent":
        return f"agent {value}"
    if kind == "scope":
        return f"scope {value}"
    if kind == "account":
        return f"account {value}"
    if kind == "service":
        return value
    if kind == "session":
        return f"session {value}"
    return "all principals"
