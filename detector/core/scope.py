"""Task scopes: which sessions a scope binds to, and what a bound session may do.

A scope file is validated by `detector.core.scope_schema`; this module compiles each scope's
globs once into regular expressions so the per-event checks are a few regex matches.
Binding depends only on the session, so callers may cache `ScopeSet.bind` per session.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from detector.core.scope_schema import ScopeSpec, read_document

if TYPE_CHECKING:
    # Only named in signatures: the pre-flight gate checks calls without sessions and
    # imports this module on every start-up.
    from detector.core.session_view import SessionView

VIOLATION_KINDS = (
    "out-of-scope-action",
    "out-of-scope-resource",
    "out-of-scope-region",
    "out-of-scope-account",
    "scope-expired",
)

# IAM service prefixes whose calls CloudTrail records in one fixed region (mostly us-east-1,
# us-west-2 for Global Accelerator) whatever region the caller works in, so a region check
# would flag every use. STS is here for its global endpoint; its regional endpoints are
# harmless to exempt because STS calls touch no regional resource. Left out on purpose:
# wafv2 and waf-regional (regional), sso / identitystore (recorded in the home region).
GLOBAL_SERVICES = frozenset(
    {
        "account",
        "artifact",
        "aws-portal",
        "billing",
        "budgets",
        "ce",
        "cloudfront",
        "cur",
        "freetier",
        "globalaccelerator",
        "health",
        "iam",
        "invoicing",
        "organizations",
        "payments",
        "pricing",
        "route53",
        "route53domains",
        "savingsplans",
        "shield",
        "sts",
        "support",
        "tax",
        "trustedadvisor",
        "waf",
    }
)

# Session attribute each match field reads; `account` is the session's account.
MATCH_ATTRIBUTES = {
    "source_identity": "source_identity",
    "role_arn": "role_arn",
    "session_name": "session_name",
    "principal_arn": "principal_arn",
    "agent": "agent",
    "account": "account_id",
}
# Match fields fixed when the credentials are minted: a scope binding on one of them (or on
# tags) names the credential set itself, not only the agent or account that uses it.
CREDENTIAL_MATCH_FIELDS = frozenset(
    {"source_identity", "role_arn", "session_name", "principal_arn"}
)
# Agent names are ours, not AWS's, and are written in either case.
CASELESS_MATCH_FIELDS = frozenset({"agent"})
LISTED_GLOBS = 6
# Verdicts remembered per scope; past this many the memo starts again.
MEMO_VERDICTS = 8192


def glob_regex(pattern: str) -> str:
    """Regex source for one glob: * is any run of characters (':' and '/' included), ? one."""
    return "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobSet:
    """Several globs compiled into one alternation whose named groups tell which matched."""

    patterns: tuple[str, ...]
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, patterns: Iterable[str], *, ignore_case: bool = False) -> GlobSet:
        patterns = tuple(patterns)
        source = "|".join(f"(?P<g{i}>{glob_regex(p)})" for i, p in enumerate(patterns))
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        return cls(patterns=patterns, regex=re.compile(source or "(?!)", flags))

    def first(self, value: str) -> str | None:
        """The first glob (in file order) that matches the whole value, else None."""
        found = self.regex.fullmatch(value)
        if found is None or found.lastgroup is None:
            return None
        return self.patterns[int(found.lastgroup[1:])]

    def listing(self) -> str:
        """The globs for a message, shortened when there are many."""
        shown = ", ".join(self.patterns[:LISTED_GLOBS])
        extra = len(self.patterns) - LISTED_GLOBS
        return f"{shown}, +{extra} more" if extra > 0 else shown


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One way an event steps outside its scope.

    kind     one of VIOLATION_KINDS
    reason   one sentence naming the subject, the scope and the glob (or globs) involved
    subject  the offending action, resource ARN, region, account or expiry time
    """

    kind: str
    reason: str
    subject: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeVerdict:
    """The result of checking one event against the scope its session is bound to."""

    scope: str
    violations: tuple[Violation, ...]
    on_violation: str = "alert"

    @property
    def in_scope(self) -> bool:
        return not self.violations


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """One task scope, with its globs compiled.

    match / tags   (field or tag key, glob, compiled) triples; all must match to bind
    allow_*        None when the file sets no restriction for that check
    expires        timezone-aware, or None
    """

    name: str
    source: str
    description: str | None = None
    on_violation: str = "alert"
    expires: datetime | None = None
    match: tuple[tuple[str, str, re.Pattern[str]], ...]
    tags: tuple[tuple[str, str, re.Pattern[str]], ...] = ()
    allow_actions: GlobSet
    allow_resources: GlobSet | None = None
    allow_regions: GlobSet | None = None
    allow_accounts: GlobSet | None = None
    deny_actions: GlobSet
    deny_resources: GlobSet
    # (actions, resources, region, account) -> the verdict without the expiry check, which
    # depends on the event's time. Every check is a pure function of the scope and these,
    # and an agent repeats its calls: most events find their verdict here.
    _verdicts: dict[tuple[Any, ...], ScopeVerdict] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_spec(cls, spec: ScopeSpec, *, source: str) -> Scope:
        """Compile a validated spec; `source` names the file for messages."""

        def optional(patterns: tuple[str, ...] | None) -> GlobSet | None:
            return None if patterns is None else GlobSet.compile(patterns)

        return cls(
            name=spec.name,
            source=source,
            description=spec.description,
            on_violation=spec.on_violation,
            expires=spec.expires,
            match=tuple(
                (field, pattern, _compile(pattern, ignore_case=field in CASELESS_MATCH_FIELDS))
                for field, pattern in spec.match
            ),
            tags=tuple((key, pattern, _compile(pattern)) for key, pattern in spec.tags),
            allow_actions=GlobSet.compile(spec.allow_actions, ignore_case=True),
            allow_resources=optional(spec.allow_resources),
            allow_regions=optional(spec.allow_regions),
            allow_accounts=optional(spec.allow_accounts),
            deny_actions=GlobSet.compile(spec.deny_actions, ignore_case=True),
            deny_resources=GlobSet.compile(spec.deny_resources),
        )

    # -- binding ---------------------------------------------------------------------------

    @property
    def names_credentials(self) -> bool:
        """True when the match names the credential set (not only `agent` or `account`)."""
        return bool(self.tags) or any(f in CREDENTIAL_MATCH_FIELDS for f, _, _ in self.match)

    def matches(self, session: SessionView) -> bool:
        """True when every match field is present on the session and matches its glob."""
        for field, _, regex in self.match:
            value = getattr(session, MATCH_ATTRIBUTES[field])
            if value is None or regex.fullmatch(value) is None:
                return False
        for key, _, regex in self.tags:
            value = session.tags.get(key)
            if value is None or regex.fullmatch(value) is None:
                return False
        return True

    def explain_match(self, session: SessionView) -> list[str]:
        """One line per match field saying whether the session satisfies it."""
        lines = []
        for field, pattern, regex in self.match:
            value = getattr(session, MATCH_ATTRIBUTES[field])
            lines.append(f"match.{field} {pattern}: {_matched(value, regex)}")
        for key, pattern, regex in self.tags:
            lines.append(f"match.tags.{key} {pattern}: {_matched(session.tags.get(key), regex)}")
        return lines

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(
        self,
        *,
        actions: Sequence[str],
        resources: Sequence[str],
        region: str,
        account: str | None,
        at: datetime,
    ) -> ScopeVerdict:
        """Check one event. Violations come in the order action, resource, region, account,
        expiry, with one violation per offending action or resource.

        A check is skipped when the event lacks what it needs: no IAM action, no resource,
        no recorded region, no account. Events whose actions are all global services are
        exempt from the region check.
        """
        key = (tuple(actions), tuple(resources), region, account)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._timeless_verdict(actions, resources, region, account)
            if len(self._verdicts) >= MEMO_VERDICTS:
                self._verdicts.clear()  # bounded; refills with what the agents call now
            self._verdicts[key] = verdict
        expired = self._expiry_violation(at)
        if expired is None:
            return verdict
        return ScopeVerdict(
            scope=self.name,
            violations=(*verdict.violations, expired),
            on_violation=self.on_violation,
        )

    def _timeless_verdict(
        self, actions: Sequence[str], resources: Sequence[str], region: str, account: str | None
    ) -> ScopeVerdict:
        violations = [v for a in actions if (v := self._action_violation(a)) is not None]
        violations.extend(v for r in resources if (v := self._resource_violation(r)) is not None)
        if (found := self._region_violation(actions, region)) is not None:
            violations.append(found)
        if (found := self._account_violation(account)) is not None:
            violations.append(found)
        return ScopeVerdict(
            scope=self.name, violations=tuple(violations), on_violation=self.on_violation
        )

    def _action_violation(self, action: str) -> Violation | None:
        denied = self.deny_actions.first(action)
        if denied is not None:
            reason = f"{action} is denied by scope {self.name} (deny {denied})"
        elif self.allow_actions.first(action) is None:
            reason = (
                f"{action} is not among the actions scope {self.name} allows "
                f"({self.allow_actions.listing()})"
            )
        else:
            return None
        return Violation(kind="out-of-scope-action", reason=reason, subject=action)

    def _resource_violation(self, arn: str) -> Violation | None:
        denied = self.deny_resources.first(arn)
        if denied is not None:
            reason = f"{arn} is denied by scope {self.name} (deny {denied})"
        elif self.allow_resources is not None and self.allow_resources.first(arn) is None:
            reason = (
                f"{arn} is not among the resources scope {self.name} allows "
                f"({self.allow_resources.listing()})"
            )
        else:
            return None
        return Violation(kind="out-of-scope-resource", reason=reason, subject=arn)

    def _region_violation(self, actions: Sequence[str], region: str) -> Violation | None:
        allowed = self.allow_regions
        if allowed is None or not region or global_only(actions):
            return None
        if allowed.first(region) is not None:
            return None
        return Violation(
            kind="out-of-scope-region",
            reason=f"region {region} is not among the regions scope {self.name} allows "
            f"({allowed.listing()})",
            subject=region,
        )

    def _account_violation(self, account: str | None) -> Violation | None:
        allowed = self.allow_accounts
        if allowed is None or account is None or allowed.first(account) is not None:
            return None
        return Violation(
            kind="out-of-scope-account",
            reason=f"account {account} is not among the accounts scope {self.name} allows "
            f"({allowed.listing()})",
            subject=account,
        )

    def _expiry_violation(self, at: datetime) -> Violation | None:
        if self.expires is None or _aware(at) <= self.expires:
            return None
        expiry = stamp(self.expires)
        return Violation(
            kind="scope-expired",
            reason=f"scope {self.name} expired at {expiry} (event at {stamp(at)})",
            subject=expiry,
        )

    # -- explanation -----------------------------------------------------------------------

    def explain(
        self,
        *,
        actions: Sequence[str],
        resources: Sequence[str],
        region: str,
        account: str | None,
        at: datetime,
    ) -> list[str]:
        """Human-readable lines, one per check, naming the glob that decided it."""
        lines = [f"scope {self.name} ({self.source})"]
        if not actions:
            lines.append("actions: none (the event maps to no IAM action); not checked")
        lines.extend(
            f"action {action}: {self._why(action, self.allow_actions, self.deny_actions)}"
            for action in actions
        )
        if not resources:
            lines.append("resources: none on this event; not checked")
        lines.extend(
            f"resource {arn}: {self._why(arn, self.allow_resources, self.deny_resources)}"
            for arn in resources
        )
        lines.append(self._explain_region(actions, region))
        if account is None:
            lines.append("account: unknown; not checked")
        else:
            lines.append(f"account {account}: {self._why(account, self.allow_accounts, None)}")
        if self.expires is None:
            lines.append("expires: never")
        elif _aware(at) > self.expires:
            lines.append(f"expires {stamp(self.expires)}: expired (event at {stamp(at)})")
        else:
            lines.append(f"expires {stamp(self.expires)}: not yet (event at {stamp(at)})")
        verdict = self.evaluate(
            actions=actions, resources=resources, region=region, account=account, at=at
        )
        kinds = ", ".join(dict.fromkeys(v.kind for v in verdict.violations))
        lines.append(f"verdict: {'in scope' if verdict.in_scope else 'out of scope: ' + kinds}")
        return lines

    def _explain_region(self, actions: Sequence[str], region: str) -> str:
        if not region:
            return "region: not recorded; not checked"
        if self.allow_regions is not None and global_only(actions):
            services = sorted({a.split(":", 1)[0].lower() for a in actions})
            return f"region {region}: exempt (global services only: {', '.join(services)})"
        return f"region {region}: {self._why(region, self.allow_regions, None)}"

    @staticmethod
    def _why(value: str, allow: GlobSet | None, deny: GlobSet | None) -> str:
        denied = deny.first(value) if deny is not None else None
        allowed = allow.first(value) if allow is not None else None
        if denied is not None:
            also = f"; allow {allowed} also matches, deny wins" if allowed else ""
            return f"denied by deny {denied}{also}"
        if allow is None:
            return "allowed (the scope sets no restriction)"
        if allowed is not None:
            return f"allowed by {allowed}"
        return f"matches no allow glob ({allow.listing()})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeSet:
    """The scopes of one file, in file order."""

    scopes: tuple[Scope, ...] = ()
    source: str = ""

    def bind(self, session: SessionView) -> Scope | None:
        """The first scope in file order whose match fields all match the session."""
        for scope in self.scopes:
            if scope.matches(session):
                return scope
        return None

    def get(self, name: str) -> Scope | None:
        return next((scope for scope in self.scopes if scope.name == name), None)

    def __len__(self) -> int:
        return len(self.scopes)


def parse_scopes(document: Any, *, source: str) -> ScopeSet:
    """Validate and compile a decoded scope document. Raises ConfigError."""
    specs = read_document(document, source=source)
    return ScopeSet(scopes=tuple(Scope.from_spec(s, source=source) for s in specs), source=source)


def global_only(actions: Sequence[str]) -> bool:
    """True when there are actions and every one belongs to a global service."""
    return bool(actions) and all(
        action.split(":", 1)[0].lower() in GLOBAL_SERVICES for action in actions
    )


def stamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as CloudTrail writes times."""
    return _aware(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _aware(moment: datetime) -> datetime:
    # Naive times are UTC throughout TrailGuard.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _compile(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    return re.compile(glob_regex(pattern), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _matched(value: str | None, regex: re.Pattern[str]) -> str:
    if value is None:
        return "session has no value; no match"
    return f"{value!r} {'matches' if regex.fullmatch(value) else 'does not match'}"
