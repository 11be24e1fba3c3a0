"""A small IAM evaluator for the deny policies TrailGuard writes.

It answers one question: does this policy deny a request with this request context? It
knows the condition operators TrailGuard emits (StringEquals, StringLike, DateLessThan,
DateLessThanEquals, DateGreaterThan, DateGreaterThanEquals) and IAM's rules for them:
operators and keys within a `Condition` are ANDed, the values listed for one key are ORed,
and a key absent from the request context makes its condition false (these are not the
`...IfExists` forms). An operator it does not know raises instead of guessing.

The revoke-session responder runs it over the document it read back before it reports
success; the tests run it over the written document against several sessions' contexts.
`decide` evaluates a whole identity or session policy for one request (explicit deny, then
allow, else the implicit deny), with Action/NotAction and Resource/NotResource globs, which is
how the session policies `trailguard scope policy` writes are checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any


class UnsupportedCondition(ValueError):
    pass


def denies(policy: Mapping[str, Any], context: Mapping[str, str], action: str = "*") -> bool:
    """True when some Deny statement of `policy` matches `action` and `context`."""
    raw = policy.get("Statement") or []
    statements = [raw] if isinstance(raw, Mapping) else list(raw)
    return any(
        statement.get("Effect") == "Deny"
        and _action_matches(statement.get("Action"), action)
        and conditions_hold(statement.get("Condition") or {}, context)
        for statement in statements
    )


def decide(
    policy: Mapping[str, Any],
    *,
    action: str,
    resource: str = "*",
    context: Mapping[str, str] | None = None,
) -> str:
    """ "allow", "explicit-deny" or "implicit-deny" for one request against one policy."""
    raw = policy.get("Statement") or []
    statements = [raw] if isinstance(raw, Mapping) else list(raw)
    matching = [s for s in statements if _statement_applies(s, action, resource, context or {})]
    if any(s.get("Effect") == "Deny" for s in matching):
        return "explicit-deny"
    if any(s.get("Effect") == "Allow" for s in matching):
        return "allow"
    return "implicit-deny"


def _statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    if "NotAction" in statement:
        if _action_matches(statement["NotAction"], action):
            return False
    elif not _action_matches(statement.get("Action"), action):
        return False
    if "NotResource" in statement:
        if _resource_matches(statement["NotResource"], resource):
            return False
    elif not _resource_matches(statement.get("Resource", "*"), resource):
        return False
    return conditions_hold(statement.get("Condition") or {}, context)


def _resource_matches(resources: Any, resource: str) -> bool:
    # A request against "*" (an action without resource-level permissions) matches only "*".
    listed = [resources] if isinstance(resources, str) else list(resources or [])
    return any(r == "*" or _string_like(resource, r) for r in listed)


def conditions_hold(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, keys in condition.items():
        test = _OPERATORS.get(operator)
        if test is None:
            raise UnsupportedCondition(f"condition operator {operator!r} is not supported")
        for key, expected in keys.items():
            actual = _lookup(context, key)
            if actual is None:
                return False
            values = [expected] if isinstance(expected, str) else list(expected)
            if not any(test(actual, str(v)) for v in values):
                return False
    return True


def _lookup(context: Mapping[str, str], key: str) -> str | None:
    # Condition key names are case-insensitive in IAM.
    lowered = key.lower()
    for name, value in context.items():
        if name.lower() == lowered:
            return value
    return None


def _action_matches(actions: Any, action: str) -> bool:
    listed = [actions] if isinstance(actions, str) else list(actions or [])
    # IAM action names are case-insensitive; only * and ? are wildcards (no [] classes).
    return any(a == "*" or _string_like(action.lower(), a.lower()) for a in listed)


def _string_like(actual: str, pattern: str) -> bool:
    # IAM's StringLike: `*` any run of characters, `?` one character, case-sensitive.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, actual, flags=re.DOTALL) is not None


def _date(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _dates(compare: Callable[[datetime, datetime], bool]) -> Callable[[str, str], bool]:
    def test(actual: str, expected: str) -> bool:
        return compare(_date(actual), _date(expected))

    return test


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda actual, expected: actual == expected,
    "StringLike": _string_like,
    "DateLessThan": _dates(lambda a, b: a < b),
    "DateLessThanEquals": _dates(lambda a, b: a <= b),
    "DateGreaterThan": _dates(lambda a, b: a > b),
    "DateGreaterThanEquals": _dates(lambda a, b: a >= b),
}
