"""Shared vocabularies: severities, risk categories and session kinds."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Severity(IntEnum):
    """Ordered so that comparisons read naturally: Severity.HIGH > Severity.MEDIUM."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        # Read for every finding written and every open alert saved: a lookup, not the
        # enum's `name` lowered each time.
        return _SEVERITY_LABELS[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {value!r} (one of {names})") from None


_SEVERITY_LABELS = {severity: severity.name.lower() for severity in Severity}


class Category(StrEnum):
    """What an action does, in terms of the harm it can cause."""

    READ = "read"
    LIST = "list"
    WRITE = "write"
    DESTROY = "destroy"
    PERMISSIONS = "permissions"
    DEFENSE_EVASION = "defense-evasion"
    DATA_EXPOSURE = "data-exposure"
    CREDENTIAL_ACCESS = "credential-access"
    PERSISTENCE = "persistence"

    @property
    def mutating(self) -> bool:
        return self not in (Category.READ, Category.LIST, Category.CREDENTIAL_ACCESS)

    @property
    def dangerous(self) -> bool:
        """The categories whose out-of-scope use is critical for an agent."""
        return self in DANGEROUS

    @classmethod
    def parse(cls, value: str) -> Category:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(c.value for c in cls)
            raise ValueError(f"unknown category {value!r} (one of {names})") from None


DANGEROUS = frozenset(
    {Category.DESTROY, Category.PERMISSIONS, Category.DEFENSE_EVASION, Category.DATA_EXPOSURE}
)


class SessionKind(StrEnum):
    AGENT = "agent"
    HUMAN = "human"
    SERVICE = "service"
    UNKNOWN = "unknown"


class CredentialRelation(StrEnum):
    """Whose permissions a session's credentials carry.

    inherited  an agent on a person's own credential set, or on a role a person assumed for
               themselves and handed over: it can do whatever that person can
    delegated  an agent on a role session a person minted for it, into a role that is not
               the person's own and that is marked for agents or bound by a task scope
    own        everything else: people and services on their own credentials, and agents
               whose credentials no person minted (a broker, a workload)
    """

    INHERITED = "inherited"
    DELEGATED = "delegated"
    OWN = "own"
