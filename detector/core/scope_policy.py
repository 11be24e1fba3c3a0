"""A task scope as IAM policy JSON: the session policy `task start` passes to AssumeRole, and
the trust-policy snippet for agent roles.

A session policy can only narrow what the role grants, so the scope's allow list is the
policy's allow list and everything else is already implicitly denied. Explicit denies are
added where an allow glob would otherwise reach further than the scope means:
  - the scope's own deny actions and deny resources;
  - every tier-0 action of the risk catalogue that an allow glob covers without naming it
    (`cloudformation:*` covers `cloudformation:DeleteStack`; only an exact
    `cloudformation:DeleteStack` in the allow list lets it through).
Resources go in `Resource`, regions in an `aws:RequestedRegion` condition (not on the
statement of global services, whose calls are made in one fixed region), expiry in an
`aws:CurrentTime` condition. The result is compressed (subsumed globs dropped, tier-0 denies
folded into `service:Verb*` globs where that glob matches nothing else of the service) and
must fit AWS's 2,048-character limit on session-policy plain text, or PolicyTooLarge says
which services take the room so the scope can be split.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from detector.core.actions import action_verb
from detector.core.scope import GLOBAL_SERVICES, Scope, glob_regex, stamp

# AWS: "The plaintext that you use for both inline and managed session policies can't exceed
# 2,048 characters." AWS also applies a packed (compressed) limit shared with session tags,
# which only the AssumeRole answer can tell (PackedPolicyTooLarge).
SESSION_POLICY_LIMIT = 2048
VERSION = "2012-10-17"

ActionsOf = Callable[[str], Sequence[str]]
"""Service prefix → its action names in canonical casing (without the prefix); () if unknown."""
TierOf = Callable[[str], int]
""""service:Action" → its catalogue tier (0 irreversible … 3 read)."""


class PolicyTooLarge(ValueError):
    """The compressed policy still exceeds the limit; the message says how to split the scope."""


def policy_text(policy: Mapping[str, Any]) -> str:
    """The compact JSON AWS measures against the limit (no insignificant white space)."""
    return orjson.dumps(policy).decode()


def session_policy(
    scope: Scope,
    *,
    services: Sequence[str],
    actions_of: ActionsOf,
    tier_of: TierOf,
    limit: int = SESSION_POLICY_LIMIT,
) -> dict[str, Any]:
    """The session policy for `scope`. Raises PolicyTooLarge when it cannot fit `limit`."""
    allow = _without_subsumed(scope.allow_actions.patterns)
    statements: list[dict[str, Any]] = []
    regional = [a for a in allow if not _global(a)]
    global_ = [a for a in allow if _global(a)]
    resources = list(scope.allow_resources.patterns) if scope.allow_resources else ["*"]
    time_limit = (
        {"DateLessThan": {"aws:CurrentTime": stamp(scope.expires)}} if scope.expires else {}
    )
    if regional:
        condition: dict[str, Any] = dict(time_limit)
        if scope.allow_regions is not None:
            regions = list(scope.allow_regions.patterns)
            condition["StringLike"] = {"aws:RequestedRegion": _one_or_list(regions)}
        statements.append(_statement("Allow", regional, resources, condition))
    if global_:
        statements.append(_statement("Allow", global_, resources, time_limit))
    denied = _without_subsumed(scope.deny_actions.patterns)
    tier0 = _uncovered_tier0(
        allow,
        scope.allow_actions.patterns,
        denied,
        services=services,
        actions_of=actions_of,
        tier_of=tier_of,
    )
    # Merged into one statement: both are plain denies on every resource.
    deny_all = denied + _compress(tier0, actions_of)
    if deny_all:
        statements.append(_statement("Deny", deny_all, ["*"], {}))
    if scope.deny_resources.patterns:
        statements.append(_statement("Deny", ["*"], list(scope.deny_resources.patterns), {}))
    policy = {"Version": VERSION, "Statement": statements}
    size = len(policy_text(policy))
    if size > limit:
        raise PolicyTooLarge(_split_advice(scope, policy, size, limit))
    return policy


def trust_policy(
    *,
    principal_arn: str,
    source_identity: str = "agent-*",
    session_name: str = "agent-*",
) -> dict[str, Any]:
    """Trust policy for an agent role: only `principal_arn` may assume it, and only when it sets
    a source identity and a session name matching the patterns (SetSourceIdentity and
    TagSession are allowed with the same conditions, since task start sends both)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AgentTasksOnly",
                "Effect": "Allow",
                "Principal": {"AWS": principal_arn},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                "Condition": {
                    "StringLike": {
                        "sts:SourceIdentity": source_identity,
                        "sts:RoleSessionName": session_name,
                    }
                },
            }
        ],
    }


def _statement(
    effect: str, actions: Sequence[str], resources: Sequence[str], condition: Mapping[str, Any]
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": effect,
        "Action": _one_or_list(list(actions)),
        "Resource": _one_or_list(list(resources)),
    }
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def _global(pattern: str) -> bool:
    service = pattern.split(":", 1)[0].lower()
    return service in GLOBAL_SERVICES


def _matches(pattern: str, action: str) -> bool:
    return re.fullmatch(glob_regex(pattern), action, re.IGNORECASE | re.DOTALL) is not None


def _without_subsumed(patterns: Iterable[str]) -> list[str]:
    """Patterns in order, without duplicates or ones another pattern already matches."""
    unique = list(dict.fromkeys(patterns))
    kept = []
    for index, pattern in enumerate(unique):
        wider = [other for j, other in enumerate(unique) if j != index and _matches(other, pattern)]
        # Of two globs that match each other (equal up to case), the first one stays.
        if any(not _matches(pattern, other) or unique.index(other) < index for other in wider):
            continue
        kept.append(pattern)
    return kept


def _service_prefixes(pattern: str, services: Sequence[str]) -> list[str]:
    service = pattern.split(":", 1)[0] if ":" in pattern else pattern
    return [s for s in services if _matches(service, s)]


def _uncovered_tier0(
    allow: Sequence[str],
    listed: Sequence[str],
    denied: Sequence[str],
    *,
    services: Sequence[str],
    actions_of: ActionsOf,
    tier_of: TierOf,
) -> list[str]:
    """Tier-0 actions some allow glob covers, that no allow entry names exactly and no scope
    deny already covers."""
    # `listed` is the allow list as written: an exact action there names it, even when a
    # wider glob made it redundant in the allow statement.
    named = {a.lower() for a in listed if "*" not in a and "?" not in a}
    found: dict[str, None] = {}
    for pattern in allow:
        for service in _service_prefixes(pattern, services):
            for name in actions_of(service):
                action = f"{service}:{name}"
                if (
                    action.lower() not in named
                    and _matches(pattern, action)
                    and not any(_matches(d, action) for d in denied)
                    and tier_of(action) == 0
                ):
                    found[action] = None
    return sorted(found)


def _compress(actions: Sequence[str], actions_of: ActionsOf) -> list[str]:
    """Fold actions of one service sharing a verb into `service:Verb*`, or `service:Verb*Tail`
    with their common tail, when that glob matches only actions in the list (so the deny never
    reaches an action the list leaves alone)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for action in actions:
        service, name = action.split(":", 1)
        groups.setdefault((service, action_verb(name)), []).append(name)
    listed = {a.lower() for a in actions}
    out: list[str] = []
    for (service, verb), names in groups.items():
        if len(names) < 2:
            out.extend(f"{service}:{n}" for n in names)
            continue
        tail = _common_tail([n[len(verb) :] for n in names])
        for glob in (f"{service}:{verb}*", f"{service}:{verb}*{tail}"):
            reach = [
                f"{service}:{n}" for n in actions_of(service) if _matches(glob, f"{service}:{n}")
            ]
            if all(r.lower() in listed for r in reach):
                out.append(glob)
                break
        else:
            out.extend(f"{service}:{n}" for n in names)
    return out


def _common_tail(names: Sequence[str]) -> str:
    tail = names[0]
    for name in names[1:]:
        while not name.endswith(tail):
            tail = tail[1:]
    return tail


def _split_advice(scope: Scope, policy: Mapping[str, Any], size: int, limit: int) -> str:
    weight: dict[str, int] = {}
    for statement in policy["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            service = action.split(":", 1)[0]
            weight[service] = weight.get(service, 0) + len(action) + 3
    heaviest = sorted(weight.items(), key=lambda item: -item[1])[:5]
    listing = ", ".join(f"{service} ~{chars}" for service, chars in heaviest)
    return (
        f"scope {scope.name}: its session policy is {size} characters, over AWS's "
        f"{limit}-character limit for session policies. Split the scope into tasks of fewer "
        f"services (characters per service: {listing}), replace lists of exact actions "
        f"with globs such as 'service:Describe*', or name fewer resources."
    )
