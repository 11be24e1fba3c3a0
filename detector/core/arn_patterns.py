"""Generalise the resource ARNs a session touched into a few editable scope globs.

The rule, per group of ARNs that share partition, service, region, account and resource
type (the part of the resource before its first '/' or ':', e.g. `instance/`, `role/`, the
bucket of an S3 object; S3 bucket ARNs have no type):

1. a group of one ARN stays exact;
2. within a group, names are clustered by their first word (up to and including the first
   '-', '_', '.', '/' or ':'); a cluster of two or more names becomes `<common prefix>*`,
   the common prefix cut back to its last separator, when that leaves at least
   MIN_PREFIX characters (`stratus-red-team-a1`, `stratus-red-team-b2` → `stratus-red-team-*`);
3. a cluster whose prefix is shorter (generated ids such as `i-0a1`, `i-0b2`) widens to
   the whole type (`instance/*`), since ids say nothing about purpose; without a type
   (bucket names) the names stay exact instead, as `arn:aws:s3:::*` would be all of S3.

Account and region are never widened. Whitespace (S3 keys may hold it) becomes `?`, since
scope files refuse whitespace in resource patterns and `?` still matches it. Scope globs let
`*` cross '/' and ':', so a bucket prefix glob also admits the objects in those buckets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SEPARATORS = "-_./:"
MIN_PREFIX = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourcePattern:
    """One proposed resource glob and the observed ARNs it stands for.

    rule   "exact", "prefix" or "type" (which step of the module's rule produced it)
    """

    pattern: str
    rule: str
    arns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Parts:
    head: str  # "arn:partition:service:region:account:"
    kind: str  # resource type with its separator ("instance/"), or "" when there is none
    name: str


def split_arn(arn: str) -> tuple[str, str, str] | None:
    """(head, type, name) of an ARN, or None when it is not `arn:p:s:r:a:resource`."""
    fields = arn.split(":", 5)
    if len(fields) != 6 or fields[0] != "arn" or not fields[5]:
        return None
    head = ":".join(fields[:5]) + ":"
    resource = fields[5]
    cut = min((i for i in (resource.find("/"), resource.find(":")) if i > 0), default=-1)
    if cut < 0:
        return head, "", resource
    return head, resource[: cut + 1], resource[cut + 1 :]


def generalise(arns: Iterable[str]) -> tuple[ResourcePattern, ...]:
    """Patterns covering every ARN given (see the module docstring), sorted by pattern.

    Strings that are not ARNs are kept as they are (the YAML notes them: scope files take ARN
    patterns only).
    """
    groups: dict[tuple[str, str], set[str]] = {}
    exact: set[str] = set()
    for arn in set(arns):
        parts = split_arn(arn)
        if parts is None:
            exact.add(arn)
            continue
        head, kind, name = parts
        groups.setdefault((head, kind), set()).add(name)
    found = [ResourcePattern(pattern=arn, rule="exact", arns=(arn,)) for arn in exact]
    for (head, kind), names in groups.items():
        found.extend(_group_patterns(head, kind, names))
    writable = (
        ResourcePattern(pattern=without_whitespace(p.pattern), rule=p.rule, arns=p.arns)
        for p in found
    )
    return tuple(sorted(writable, key=lambda p: p.pattern))


def without_whitespace(pattern: str) -> str:
    """The pattern with each whitespace character as `?`, which matches it."""
    return "".join("?" if char.isspace() else char for char in pattern)


def _group_patterns(head: str, kind: str, names: set[str]) -> list[ResourcePattern]:
    def arn(name: str) -> str:
        return head + kind + name

    if len(names) == 1:
        (name,) = names
        return [ResourcePattern(pattern=arn(name), rule="exact", arns=(arn(name),))]
    clusters: dict[str, list[str]] = {}
    for name in names:
        clusters.setdefault(_first_word(name), []).append(name)
    found: list[ResourcePattern] = []
    widen: list[str] = []
    for members in clusters.values():
        members.sort()
        if len(members) == 1:
            found.append(
                ResourcePattern(pattern=arn(members[0]), rule="exact", arns=(arn(members[0]),))
            )
            continue
        prefix = _word_prefix(members)
        if len(prefix) >= MIN_PREFIX:
            found.append(
                ResourcePattern(
                    pattern=arn(prefix) + "*", rule="prefix", arns=tuple(arn(m) for m in members)
                )
            )
        elif kind:
            widen.extend(members)
        else:
            found.extend(
                ResourcePattern(pattern=arn(m), rule="exact", arns=(arn(m),)) for m in members
            )
    if widen:
        # One type-wide glob covers everything else of the type too: keep it alone.
        covered = sorted(arn(n) for n in names)
        return [ResourcePattern(pattern=head + kind + "*", rule="type", arns=tuple(covered))]
    return found


def _first_word(name: str) -> str:
    """The name up to its first separator, so "app" and "app-worker" share "app"."""
    for index, char in enumerate(name):
        if char in SEPARATORS:
            return name[:index]
    return name


def _word_prefix(names: list[str]) -> str:
    """The names' common prefix, cut back to end at a separator; a prefix that is itself one
    of the names ("app" of "app", "app-worker") is a whole word and is kept."""
    prefix = names[0]
    for name in names[1:]:
        length = 0
        for mine, theirs in zip(prefix, name, strict=False):
            if mine != theirs:
                break
            length += 1
        prefix = prefix[:length]
    cut = max(prefix.rfind(s) for s in SEPARATORS)
    if cut < 0 and prefix in names:
        return prefix
    return prefix[: cut + 1]
