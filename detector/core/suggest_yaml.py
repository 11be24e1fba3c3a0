"""A proposed scope as scope-file YAML, with comments that say what each line rests on.

YAML emitters drop comments, so the text is written here. Every value is a double-quoted
scalar made by json.dumps: JSON strings are valid YAML double-quoted strings (non-ASCII is
escaped), so no name from CloudTrail can break the document or be read as another type.
"""

from __future__ import annotations

import json

from detector.core.scope import stamp
from detector.core.suggest import ProposedScope


def _q(value: str) -> str:
    return json.dumps(value)


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def render(proposal: ProposedScope, *, origin: str) -> str:
    """The scope file text; `origin` says what it was suggested from (for the header)."""
    span = ""
    if proposal.first_seen is not None and proposal.last_seen is not None:
        span = f", {stamp(proposal.first_seen)} to {stamp(proposal.last_seen)}"
    lines = [
        f"# Suggested from {proposal.events} event(s) of {origin}{span}.",
        "# Actions are exactly those seen; resources are generalised (see README, Least",
        "# privilege from history). Review every line before use: the history may hold calls",
        "# the task should not make, and may lack calls it will need.",
        "scopes:",
        f"  - name: {_q(proposal.name)}",
        f"    description: {_q(proposal.description)}",
        "    match:",
    ]
    lines.extend(f"      {field}: {_q(value)}" for field, value in proposal.match)
    lines.append("    allow:")
    if proposal.actions:
        lines.append("      actions:")
        for seen in proposal.actions:
            failed = f", {seen.failed} failed but authorised" if seen.failed else ""
            lines.append(f"        - {_q(seen.action)}  # seen {_times(seen.calls)}{failed}")
    else:
        # The schema needs an action; with none seen, allow one that no call resolves to.
        lines.append("      # no authorised call was seen: nothing is allowed")
        lines.append("      actions:")
        lines.append(f"        - {_q('none:NoActionSeen')}")
    arns = [p for p in proposal.resources if p.pattern.startswith("arn:")]
    if arns:
        lines.append("      resources:")
        for pattern in arns:
            note = (
                "exact"
                if pattern.rule == "exact"
                else f"{len(pattern.arns)} seen, by {pattern.rule}, e.g. {pattern.arns[0]}"
            )
            lines.append(f"        - {_q(pattern.pattern)}  # {note}")
    # Scope files take ARN patterns only: any other resource can only be admitted by "*".
    lines.extend(
        f"      # not an ARN, so no pattern can allow it: {_q(other.pattern)}"
        for other in proposal.resources
        if not other.pattern.startswith("arn:")
    )
    if proposal.regions:
        lines.append("      regions:")
        lines.extend(
            f"        - {_q(region)}  # {count} event(s)" for region, count in proposal.regions
        )
    if proposal.accounts:
        lines.append("      accounts:")
        lines.extend(f"        - {_q(account)}" for account in proposal.accounts)
    if proposal.denied:
        lines.append(
            "    # Refused by IAM when tried, so not allowed here (add any the task needs):"
        )
        for refused in proposal.denied:
            codes = ", ".join(refused.codes)
            lines.append(
                f"    #   - {_q(refused.action)}  # denied {_times(refused.calls)} ({codes})"
            )
    lines.append('    on_violation: "alert"')
    return "\n".join(lines) + "\n"
