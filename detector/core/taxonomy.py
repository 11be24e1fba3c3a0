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
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {value!r} (one of {names})") from None


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
