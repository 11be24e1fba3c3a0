"""One sentence on-call can read about a novel value, from the counts that made it novel:

"ci-deployer never called iam:createuser in 14 days and 61,204 calls; its account did
twice."
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from detector.baseline.counts import GroupInfo
from detector.baseline.features import FEATURES, NONE
from detector.baseline.groups import label, level


class Counts(Protocol):
    def raw(self, group: str, feature: int, value: str) -> int: ...

    def group(self, group: str) -> GroupInfo | None: ...


def what(feature: int, value: str, zone: str) -> str:
    """The use, in the past tense: "called iam:createuser", "acted in ap-south-1"."""
    name = FEATURES[feature]
    if name == "action":
        return f"called {value}"
    if name == "service":
        return f"used {value}"
    if name == "resource_type":
        return "touched no resource" if value == NONE else f"touched a resource of type {value}"
    if name == "region":
        return f"acted in {value}"
    if name == "hour":
        hour = int(value)
        return f"acted between {hour:02d}:00 and {(hour + 1) % 24:02d}:00 {zone}"
    if name == "network":
        return f"called from {value} addresses"
    if name == "client":
        return f"used {value}"
    return "succeeded" if value == NONE else f"got {value}"


def times(count: int) -> str:
    if count == 1:
        return "once"
    if count == 2:
        return "twice"
    return f"{count:,} times"


def span(info: GroupInfo) -> str:
    seconds = max(0.0, info.last - info.first)
    if seconds >= 86400:
        amount, unit = round(seconds / 86400), "day"
    elif seconds >= 3600:
        amount, unit = round(seconds / 3600), "hour"
    else:
        amount, unit = max(1, round(seconds / 60)), "minute"
    return f"{amount} {unit}{'s' if amount != 1 else ''}"


def sentence(counts: Counts, chain: Sequence[str], feature: int, value: str, *, zone: str) -> str:
    """Who did not (or rarely) do it, over how much history, and who above them did.

    `chain` is the group chain without the session; the subject is its most specific group
    with any history, else the whole baseline.
    """
    subject_at = next(
        (i for i, g in enumerate(chain) if (info := counts.group(g)) and info.calls), None
    )
    use = what(feature, value, zone)
    if subject_at is None:
        return f"nothing in the baseline {use}, and {label(chain[0])} has no history yet."
    subject = chain[subject_at]
    info = counts.group(subject)
    assert info is not None
    raw = counts.raw(subject, feature, value)
    who = label(subject)
    history = f"in {span(info)} and {info.calls:,} calls"
    head = f"{who} never {use} {history}" if raw == 0 else f"{who} {use} {times(raw)} {history}"
    for wider in chain[subject_at + 1 :]:
        # A wider group's counts include the subject's own: quote only the others'.
        wider_raw = counts.raw(wider, feature, value)
        if wider_raw > raw:
            return f"{head}; {_relation(wider, rest=raw > 0)} did {times(wider_raw - raw)}."
    return f"{head}; nothing else in the baseline did."


def _relation(group: str, *, rest: bool) -> str:
    kind = level(group)
    if kind == "account":
        return "the rest of its account" if rest else "its account"
    if kind == "agent":
        return f"its agent kind ({group.split(':', 1)[1]})"
    if kind == "scope":
        return f"its scope ({group.split(':', 1)[1]})"
    if kind == "global":
        return "other principals"
    return label(group)
