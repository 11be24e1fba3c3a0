"""The summary `replay --format table` prints, for the person on call.

In order: what was read (and skipped or rejected), the sessions with findings, the flagged
events with every reason each raised, what would be revoked, and what to do next. Nothing is
cut: reasons wrap onto indented lines, and ARNs are printed whole on their own lines.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Protocol

from detector.core.findings import Response
from detector.core.session_view import SessionView
from detector.core.taxonomy import CredentialRelation, SessionKind, Severity
from detector.replay import FlaggedEvent, ReplayStats
from detector.sources.screen import SKIP_DESCRIPTIONS

SESSION_ROWS = 15
WIDTH = 100
# Names of skipped or unreadable files listed before "... and N more".
LISTED_FILES = 5


class TextSink(Protocol):
    def write(self, text: str, /) -> object: ...


Paint = Callable[[str, Severity], str]


def input_summary(stats: ReplayStats) -> list[str]:
    """What was read, skipped and rejected; the table's head, and stderr's for JSON Lines."""
    lines = [
        f"Replayed {stats.events:,} events from {stats.files} input(s)"
        f" ({stats.duplicates:,} duplicates skipped, {stats.rejected:,} records rejected)"
    ]
    if stats.skipped:
        reasons = Counter(skip.reason for skip in stats.skipped)
        parts = ", ".join(f"{n} {SKIP_DESCRIPTIONS[r]}" for r, n in reasons.most_common())
        lines.append(f"Skipped {len(stats.skipped)} file(s) that are not CloudTrail: {parts}")
        lines.extend(f"  {skip.name}: {skip.description}" for skip in stats.skipped[:LISTED_FILES])
        if len(stats.skipped) > LISTED_FILES:
            lines.append(f"  ... and {len(stats.skipped) - LISTED_FILES} more")
    if stats.unreadable:
        lines.append(f"Could not read {len(stats.unreadable)} file(s) to the end:")
        lines.extend(f"  {name}: {reason}" for name, reason in stats.unreadable[:LISTED_FILES])
        if len(stats.unreadable) > LISTED_FILES:
            lines.append(f"  ... and {len(stats.unreadable) - LISTED_FILES} more")
    if stats.events == 0:
        lines.append("No CloudTrail event in the inputs: nothing was checked.")
    return lines


def render(stats: ReplayStats, out: TextSink, *, color: bool = False) -> None:
    def paint(text: str, severity: Severity) -> str:
        if not color:
            return text
        code = {4: "1;31", 3: "31", 2: "33", 1: "36", 0: "2"}[int(severity)]
        return f"\x1b[{code}m{text}\x1b[0m"

    write = out.write
    write("\n".join(input_summary(stats)) + "\n\n")
    _sessions(stats, write, paint)
    write("\nFindings by severity: ")
    parts = [
        paint(f"{sev.label} {stats.findings[sev]:,}", sev)
        for sev in sorted(Severity, reverse=True)
        if stats.findings[sev]
    ]
    write(" | ".join(parts) if parts else "none")
    write(f"   (alerts raised: {stats.alerts})\n")
    _events(stats, write, paint)
    _responses(stats.responses, write)
    _next_steps(stats, write)


def _sessions(stats: ReplayStats, write: Callable[[str], object], paint: Paint) -> None:
    kinds = Counter(v.kind.value for v in stats.sessions.values())
    summary = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    flagged = _flagged_sessions(stats)
    write(f"Sessions: {len(stats.sessions)} ({summary or 'none'}); {len(flagged)} with findings\n")
    if not flagged:
        return
    write(
        f"  {'session':21} {'kind':7} {'agent':13} {'person':22} {'credentials':11} "
        f"{'scope':14} findings\n"
    )
    for session in flagged[:SESSION_ROWS]:
        counts = stats.session_findings[session.session_id]
        worst = max(counts)
        write(
            f"  {session.session_id:21} {session.kind.value:7} {(session.agent or '-'):13} "
            f"{(session.human or '-'):22} {_credentials(session):11} "
            f"{_scope(stats, session):14} "
            f"{sum(counts.values())} (worst {paint(worst.label, worst)})"
            f"{_delegation(session)}\n"
        )
        for line in _identity_lines(session):
            write(line + "\n")
    if len(flagged) > SESSION_ROWS:
        write(f"  ... {len(flagged) - SESSION_ROWS} more sessions with findings\n")
    if any(s.on_human_credentials for s in flagged[:SESSION_ROWS]):
        write(
            "  credentials \"person's\": an agent running on a person's own credentials "
            "(what it did looks like the person did it)\n"
        )
    if any(s.credentials is CredentialRelation.DELEGATED for s in flagged[:SESSION_ROWS]):
        write(
            '  credentials "delegated": an agent on its own role session, minted for it by the '
            "person named (its permissions are the role's, not the person's)\n"
        )


def _flagged_sessions(stats: ReplayStats) -> list[SessionView]:
    return sorted(
        (s for s in stats.sessions.values() if s.session_id in stats.session_findings),
        key=lambda s: (-max(stats.session_findings[s.session_id]), s.kind.value, s.session_id),
    )


def _credentials(session: SessionView) -> str:
    if session.kind is SessionKind.AGENT and session.on_human_credentials:
        return "person's"
    if session.credentials is CredentialRelation.DELEGATED:
        return "delegated"
    return "own"


def _identity_lines(session: SessionView) -> list[str]:
    """The principal in full (wrapped, never cut), and the role and session name it holds."""
    # On one line however long: an ARN is copied into a console or a policy, not read.
    lines = [f"      principal {session.principal_arn or '(no ARN in the records)'}"]
    if session.role_arn or session.session_name:
        role = session.role_arn.rsplit("/", 1)[-1] if session.role_arn else "-"
        lines.append(f"      role {role}, session name {session.session_name or '-'}")
    return lines


def _events(stats: ReplayStats, write: Callable[[str], object], paint: Paint) -> None:
    top = stats.top_events()
    if not top:
        return
    shown = sum(len(e.findings) for e in top)
    write(
        f"\nFlagged events, most severe first: {len(top)} of {stats.flagged_events:,} events "
        f"shown ({shown} of {stats.finding_count:,} findings)"
    )
    if len(top) < stats.flagged_events:
        write("; every finding: --format jsonl")
    write("\n")
    for event in top:
        _event(event, write, paint)


def _event(event: FlaggedEvent, write: Callable[[str], object], paint: Paint) -> None:
    first = event.first
    worst = event.severity
    action = first.action or "(no IAM action)"
    if first.agent:
        who = f"agent {first.agent}"
    else:
        name = first.human or (first.principal or "").rsplit("/", 1)[-1]
        who = f"{first.session_kind.value} {name}".rstrip()
    write(
        f"  {paint(worst.label.upper(), worst):8} {first.event_time:%Y-%m-%d %H:%M:%S}  "
        f"{action}  by {who}, session {first.session_id}\n"
    )
    resources = sorted({r for f in event.findings for r in f.resources})
    for resource in resources or ["(none named by the event)"]:
        write(f"           on {resource}\n")
    for finding in event.findings:
        head = f"- {finding.kind} ({finding.severity.label}):"
        for line in _wrap(head, finding.reason, indent=11):
            write(line + "\n")


def _responses(responses: Iterable[Response], write: Callable[[str], object]) -> None:
    responses = list(responses)
    if not responses:
        write("\nNothing to revoke.\n")
        return
    dry = all(r.dry_run for r in responses)
    write("\nWould revoke (dry run: responses are disabled):\n" if dry else "\nRevoke:\n")
    for r in responses:
        who = f"agent {r.agent or 'unidentified'}"
        if r.human:
            who += f" for {r.human}"
        write(f"  session {r.session_id}  {who}\n")
        write(f"      principal {r.principal or '-'}\n")
        write(
            f"      triggered by event {r.event_id} at {r.event_time:%Y-%m-%d %H:%M:%S}"
            f" (scope {r.scope})\n"
        )


def _next_steps(stats: ReplayStats, write: Callable[[str], object]) -> None:
    steps = next_steps(stats)
    write("\nWhat to do next:\n")
    for number, step in enumerate(steps, start=1):
        for line in textwrap.wrap(
            step, WIDTH, initial_indent=f"  {number}. ", subsequent_indent="     "
        ):
            write(line + "\n")


def next_steps(stats: ReplayStats) -> list[str]:
    """Concrete actions for on-call, most urgent first."""
    steps: list[str] = []
    if stats.events == 0:
        steps.append(
            "Nothing was checked: no input held a CloudTrail event. Check the paths, and the "
            "skipped and unreadable files listed above."
        )
    sessions = _flagged_sessions(stats)
    urgent = [s for s in sessions if max(stats.session_findings[s.session_id]) >= Severity.HIGH]
    for response in stats.responses:
        who = f"agent {response.agent or 'unidentified'}"
        if response.dry_run:
            steps.append(
                f"Revoke session {response.session_id} ({who}) now unless its owner confirms the "
                f"actions were intended: it was not revoked (dry run). Deny its credentials "
                f"(access key {response.access_key_id or '-'}, issued {response.issued_at or '-'}) "
                f"or set responses.enabled: true to let TrailGuard do it."
            )
        else:
            steps.append(
                f"Confirm the revocation of session {response.session_id} ({who}) took "
                f"effect: IAM policy changes can take minutes."
            )
    revoked = {r.session_id for r in stats.responses}
    for session in urgent:
        if session.session_id in revoked:
            continue
        label = f"agent {session.agent}" if session.agent else session.kind.value
        worst = max(stats.session_findings[session.session_id]).label
        steps.append(
            f"Review session {session.session_id} ({label}, worst {worst}): "
            f"`--format jsonl` lists its findings with the evidence."
        )
    steps.extend(
        f"Ask {session.human} whether agent {session.agent or 'unidentified'} was meant to run "
        "on their credentials; give the agent its own role with a declared scope."
        for session in sessions
        if session.on_human_credentials and session.human
    )
    if stats.rejected:
        steps.append(
            f"{stats.rejected:,} record(s) were rejected and not checked: "
            "read them with --dead-letter FILE; --fail-on-rejects makes that fail a CI gate."
        )
    if not steps:
        steps.append("Nothing needs action: no finding reached high severity.")
    return steps


def _delegation(session: SessionView) -> str:
    if session.credentials is CredentialRelation.DELEGATED:
        return f"  delegated by {session.delegated_by or 'a person'}"
    return ""


def _scope(stats: ReplayStats, session: SessionView) -> str:
    return stats.session_scopes.get(session.session_id, "-")


def _wrap(label: str, text: str, *, indent: int) -> list[str]:
    """`label text` wrapped at WIDTH; a word longer than a line (an ARN) stays whole."""
    return textwrap.wrap(
        f"{label} {text}",
        WIDTH,
        initial_indent=" " * indent,
        subsequent_indent=" " * (indent + 2),
        break_long_words=False,
        break_on_hyphens=False,
    )
