"""What one event means to the sequence patterns: the steps a session's story is made of.

An event becomes at most one `Step`: a compact record of what it did (read, write, destroy,
create, blind the account's logging, change someone's privileges) and what it touched, small
enough to keep a few dozen per session and to snapshot as plain lists. The patterns in
`detector.core.sequences` only ever look at steps, never at raw events.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from detector.core.actions import action_verb, service_prefix, strip_version
from detector.core.catalog import DESTROY_VERBS
from detector.core.policy import EventContext
from detector.core.session_view import SessionView
from detector.core.taxonomy import Category, SessionKind
from detector.core.timestamps import iso_instant


class Mark:
    """What a step did, as bits of `Step.marks`; one step can be several (a delete is a write
    and a destroy). Plain ints: an enum flag costs more than the rest of a step."""

    READ = 1  # a read or list call, whatever its outcome
    DENIED = 2  # refused by IAM or a resource policy
    WRITE = 4  # a mutating call that succeeded
    DESTROY = 8  # a write that removes something
    CREATE = 16  # a write that brings a resource into being
    BLIND = 32  # a write that turns logging or detection off
    GRANT = 64  # a write that gives a principal new permissions, a key, a password or trust
    FAILED = 128  # any error, denied or not
    IN_SCOPE = 256  # inside the task scope bound to the session
    AGENT = 512  # made by a session attributed to an agent


# Verbs that bring a resource (back) into being. `Put` is left out: it overwrites as often
# as it creates (objects, policies, settings), and overwriting is not re-creating.
CREATE_VERBS = frozenset({"Create", "Run", "Restore", "Register", "Import", "Launch", "Allocate"})
# Defense-evasion writes that turn something off. The catalogue's category also covers the
# writes that turn logging on (CreateTrail, StartLogging, CreateFlowLogs).
BLINDING_VERBS = frozenset(
    {"Stop", "Delete", "Disable", "Disassociate", "Deregister", "Remove", "Leave", "Suspend",
     "Pause", "Cancel", "Detach", "Deactivate"}
)  # fmt: skip
# A GuardDuty detector update is how detection is turned down (findings frequency, features),
# even when no parameter rule recognises what was changed.
BLINDING_ACTIONS = frozenset({"guardduty:UpdateDetector"})

# AWS managed policies whose grant is known to allow everything.
_ALLOW_ALL_POLICIES = frozenset({"AdministratorAccess"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """Whom a privilege change empowers, and with what.

    keys     identity keys of the grantee ("user:<account>:<name>", "role:<account>:<name>",
             "key:<access key id>", "assume:<account>:<role>", "login:<account>:<user>")
    actions  the IAM action globs granted, when the request says; None when it does not
             (a customer managed policy, a group, a boundary removed)
    label    the grantee for people: "user malicious-iam-user", "access key AKIA..."
    """

    keys: tuple[str, ...]
    actions: tuple[str, ...] | None
    label: str


# Built for nearly every event and kept by the ten thousand: a named tuple, cheaper to build
# than a dataclass, and one the garbage collector stops tracking once it sees it holds only
# strings, numbers and times.
class Step(NamedTuple):
    """One event as the sequence patterns see it.

    keys    resource keys (normalised ARNs) a destroy, create, blinding or grant touched
    noun    the operation's noun ("Stack" of DeleteStack), to tell a recreate from an update
    uses    identity keys this event exercises besides its session's (the role an AssumeRole
            assumes, the user a console sign-in is for)
    """

    event_id: str
    at: datetime
    session_id: str
    action: str
    resource: str | None
    marks: int
    keys: tuple[str, ...] = ()
    noun: str = ""
    uses: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    grant: Grant | None = None

    def has(self, mark: int) -> bool:
        return bool(self.marks & mark)

    def to_list(self) -> list[Any]:
        """Plain JSON, without the session id (the state it is kept in says it), without the
        actions when they are just `action`, and without trailing fields left at defaults."""
        data: list[Any] = [
            self.event_id, iso_instant(self.at), self.action, self.resource, self.marks
        ]  # fmt: skip
        plain = not self.actions or self.actions == (self.action,)
        if plain and self.grant is None and not (self.keys or self.noun or self.uses):
            return data  # most steps: a flush writes every step of every changed session
        grant = None
        if self.grant is not None:
            actions = None if self.grant.actions is None else list(self.grant.actions)
            grant = [list(self.grant.keys), actions, self.grant.label]
        data.extend(([] if plain else list(self.actions), list(self.keys), self.noun,
                     list(self.uses), grant))  # fmt: skip
        while len(data) > _REQUIRED and data[-1] in (None, [], ""):
            data.pop()
        return data

    def to_plain(self) -> list[Any]:
        """Its plain form in a state row (`detector.core.state_delta.Late`)."""
        return self.to_list()

    @classmethod
    def from_list(cls, data: Sequence[Any], session_id: str) -> Step:
        event_id, at, action, resource, marks, *rest = data
        actions, keys, noun, uses, grant = (*rest, *_DEFAULTS[len(rest) :])
        return cls(
            event_id=event_id,
            at=datetime.fromisoformat(at),
            session_id=session_id,
            action=action,
            resource=resource,
            marks=int(marks),
            keys=tuple(keys),
            noun=noun,
            uses=tuple(uses),
            actions=tuple(actions) or (action,),
            grant=None
            if grant is None
            else Grant(
                keys=tuple(grant[0]),
                actions=None if grant[1] is None else tuple(grant[1]),
                label=grant[2],
            ),
        )


_REQUIRED = 5  # event id, time, action, resource, marks
_DEFAULTS: tuple[Any, ...] = ((), (), "", (), None)


# Enum members looked up on their class cost a quarter of a microsecond each in Python 3.11.
_READ, _LIST, _SECRETS = Category.READ, Category.LIST, Category.CREDENTIAL_ACCESS
_DESTROY, _EVASION, _AGENT = Category.DESTROY, Category.DEFENSE_EVASION, SessionKind.AGENT


def step_of(ctx: EventContext) -> Step | None:
    """The step an event is, or None when it is nothing the patterns use. Runs for every
    event, so it looks at each classification once and builds nothing it does not need."""
    event = ctx.event
    if event.actor.type == "AWSService":
        return None  # an AWS service's own calls carry nobody's credentials: no story
    prefix, operation, verb, noun = _operation(event.event_source, event.event_name)
    failed = event.error_code is not None
    marks = Mark.FAILED if failed else 0
    if failed and event.denied:
        marks |= Mark.DENIED
    reads = mutating = destroys = secrets = evasion = False
    for classification in ctx.classifications:
        category = classification.category
        if category is _READ or category is _LIST:
            reads = True
        elif category is _SECRETS:
            secrets = True  # a read, but of secrets, not of the account
        else:
            mutating = True
            destroys = destroys or category is _DESTROY
            evasion = evasion or category is _EVASION
    if reads and not mutating and not secrets:
        marks |= Mark.READ
    if mutating and not failed:
        marks |= Mark.WRITE
        if destroys or verb.capitalize() in DESTROY_VERBS:
            marks |= Mark.DESTROY
        if verb in CREATE_VERBS:
            marks |= Mark.CREATE
        if evasion and _blinds(ctx, verb):
            marks |= Mark.BLIND
    uses = _event_uses(ctx, prefix, operation) if operation in _USES and not failed else ()
    if not marks and not uses:
        return None
    grant = None
    if marks & Mark.WRITE and prefix == "iam" and operation in _GRANTS:
        grant = _grant(ctx, operation)
        if grant is not None:
            marks |= Mark.GRANT
    if ctx.verdict is not None and not ctx.verdict.violations:
        marks |= Mark.IN_SCOPE
    if ctx.session.kind is _AGENT:
        marks |= Mark.AGENT
    actions = ctx.actions or (f"{prefix}:{operation}",)  # a sign-in authorises no action
    if not marks & (Mark.DESTROY | Mark.CREATE | Mark.BLIND | Mark.GRANT):
        # A read's resource is neither shown nor matched, and most steps are reads.
        resource = ctx.resources[0] if ctx.resources and not marks & Mark.READ else None
        # Positional: the common step, built for nearly every event.
        return Step(
            event.event_id, event.event_time, ctx.session.session_id, actions[0], resource,
            marks, (), "", uses, actions, None,
        )  # fmt: skip
    return Step(
        event_id=event.event_id,
        at=event.event_time,
        session_id=ctx.session.session_id,
        action=actions[0],
        resource=ctx.resources[0] if ctx.resources else None,
        marks=marks,
        keys=tuple(dict.fromkeys(resource_key(r) for r in ctx.resources)),
        noun=noun,
        uses=uses,
        actions=actions,
        grant=grant,
    )


@lru_cache(maxsize=16384)
def _operation(event_source: str, event_name: str) -> tuple[str, str, str, str]:
    """(service prefix, operation without its API version, its verb, its noun); cached, so
    the steps of one operation share their strings."""
    prefix = service_prefix(event_source)
    operation = strip_version(prefix, event_name)
    verb = action_verb(operation)
    return prefix, operation, verb, operation[len(verb) :]


def resource_key(arn: str) -> str:
    """An ARN as the same resource is named before and after it is recreated.

    A CloudFormation stack ARN ends in an id generated at creation; a recreated stack of the
    same name gets a new one, and a request by name carries none."""
    if ":cloudformation:" in arn and ":stack/" in arn:
        head, _, rest = arn.partition(":stack/")
        return f"{head}:stack/{rest.split('/', 1)[0]}"
    return arn


def session_identities(session: SessionView) -> tuple[str, ...]:
    """The identity keys a session's calls exercise: its IAM user, its role, its key."""
    keys: list[str] = []
    account = session.account_id or ""
    if session.principal_type == "IAMUser" and session.principal_arn:
        keys.append(f"user:{account}:{_last(session.principal_arn)}")
    if session.role_arn:
        keys.append(f"role:{account}:{_last(session.role_arn)}")
    # Only long-term keys are ever created by a call (iam:CreateAccessKey); temporary ones
    # come from STS, which attribution already links to their maker.
    if session.access_key_id and session.access_key_id.startswith("AKIA"):
        keys.append(f"key:{session.access_key_id}")
    return tuple(keys)


def grants_cover(grant: Grant, step: Step) -> bool:
    """Whether `step` exercises what `grant` gave (the grantee is checked by the caller).

    A new key, password or trust is used by any call that goes through; a policy whose
    actions the request names is used by a call to one of them; a policy the request does
    not spell out (a managed policy, a group) by any write."""
    if step.has(Mark.FAILED):
        return False
    if grant.actions is None:
        kinds = {key.split(":", 1)[0] for key in grant.keys}
        return bool(kinds & {"key", "assume", "login"}) or step.has(Mark.WRITE)
    return any(_matches(pattern, action) for pattern in grant.actions for action in step.actions)


# --- helpers -----------------------------------------------------------------------------------


def _blinds(ctx: EventContext, verb: str) -> bool:
    for c in ctx.classifications:
        if c.category is not Category.DEFENSE_EVASION:
            continue
        # Tier 0 blinding is listed by name; parameter rules name what was turned down.
        if c.tier == 0 or c.reasons or verb in BLINDING_VERBS or c.action in BLINDING_ACTIONS:
            return True
    return False


_USES = frozenset({"AssumeRole", "ConsoleLogin"})


def _event_uses(ctx: EventContext, prefix: str, operation: str) -> tuple[str, ...]:
    event = ctx.event
    account = event.account_id or ""
    if prefix == "sts" and operation == "AssumeRole":
        role = event.request_parameters.get("roleArn")
        if isinstance(role, str) and ":role/" in role:
            return (f"assume:{_arn_account(role) or account}:{_last(role)}",)
    if operation == "ConsoleLogin" and event.actor.type == "IAMUser" and event.actor.user_name:
        outcome = event.response_elements.get("ConsoleLogin")
        if outcome in (None, "Success"):
            return (f"login:{account}:{event.actor.user_name}",)
    return ()


# IAM operation → (whom it empowers: "user", "role", "assume", "key", "login" or "self",
# where the policy document is, if the request carries one).
_GRANTS: Mapping[str, tuple[str, str | None]] = {
    "AttachUserPolicy": ("user", None),
    "PutUserPolicy": ("user", "policyDocument"),
    "AddUserToGroup": ("user", None),
    "PutUserPermissionsBoundary": ("user", None),
    "DeleteUserPermissionsBoundary": ("user", None),
    "AttachRolePolicy": ("role", None),
    "PutRolePolicy": ("role", "policyDocument"),
    "PutRolePermissionsBoundary": ("role", None),
    "DeleteRolePermissionsBoundary": ("role", None),
    # Which principals carry a managed policy or a group is not in the event: the caller
    # changing one is taken to be changing its own, the privilege-escalation path.
    "AttachGroupPolicy": ("self", None),
    "PutGroupPolicy": ("self", "policyDocument"),
    "CreatePolicyVersion": ("self", "policyDocument"),
    "SetDefaultPolicyVersion": ("self", None),
    "UpdateAssumeRolePolicy": ("assume", None),
    "CreateAccessKey": ("key", None),
    "CreateLoginProfile": ("login", None),
    "UpdateLoginProfile": ("login", None),
}


def _grant(ctx: EventContext, operation: str) -> Grant | None:
    whom, document = _GRANTS[operation]
    params = ctx.event.request_parameters
    account = ctx.event.account_id or ""
    own = session_identities(ctx.session)
    user = _text(params, "userName")
    role = _text(params, "roleName")
    actions = _policy_actions(params, document)
    if whom == "user" and user:
        return Grant(keys=(f"user:{account}:{user}",), actions=actions, label=f"user {user}")
    if whom == "role" and role:
        return Grant(keys=(f"role:{account}:{role}",), actions=actions, label=f"role {role}")
    if whom == "assume" and role:
        return Grant(keys=(f"assume:{account}:{role}",), actions=None, label=f"role {role}")
    if whom == "key":
        key = ctx.event.response_elements.get("accessKey")
        key_id = _text(key, "accessKeyId") if isinstance(key, Mapping) else None
        if key_id:
            return Grant(keys=(f"key:{key_id}",), actions=None, label=f"access key {key_id}")
        return None
    if whom == "login":
        name = user or _own_user(own)
        if name:
            return Grant(keys=(f"login:{account}:{name}",), actions=None, label=f"user {name}")
        return None
    if whom in ("self", "user", "role") and own:
        identity = [k for k in own if not k.startswith("key:")] or list(own)
        return Grant(keys=tuple(identity), actions=actions, label="its own principal")
    return None


def _policy_actions(params: Mapping[str, Any], document_key: str | None) -> tuple[str, ...] | None:
    """Action globs a policy allows, when the request carries it; None when unknown or broad."""
    arn = _text(params, "policyArn")
    if arn and arn.rsplit("/", 1)[-1] in _ALLOW_ALL_POLICIES and ":aws:policy/" in arn:
        return ("*",)
    raw = params.get(document_key) if document_key else None
    if not isinstance(raw, str):
        return None
    return _document_actions(raw)


@lru_cache(maxsize=1024)
def _document_actions(raw: str) -> tuple[str, ...] | None:
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(document, Mapping):
        return None
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        return None
    found: list[str] = []
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            return None  # allows everything but a list: as broad as unknown
        action = statement.get("Action")
        listed = [action] if isinstance(action, str) else action
        if isinstance(listed, list):
            found.extend(a for a in listed if isinstance(a, str))
    return tuple(found) or None


@lru_cache(maxsize=4096)
def _matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _own_user(identities: tuple[str, ...]) -> str | None:
    for key in identities:
        if key.startswith("user:"):
            return key.rsplit(":", 1)[-1]
    return None


def _text(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) and value else None


def _last(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None
