"""The summary `replay --format table` prints: sessions, severities, reasons, revocations."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from detector.core.session_view import SessionView
from detector.core.taxonomy import CredentialRelation, SessionKind, Severity
from detector.replay import ReplayStats

SESSION_ROWS = 15


class TextSink(Protocol):
    def write(self, text: str, /) -> object: ...


def render(stats: ReplayStats, out: TextSink, *, color: bool = False) -> None:
    def paint(text: str, severity: Severity) -> str:
        if not color:
            return text
        code = {4: "1;31", 3: "31", 2: "33", 1: "36", 0: "2"}[int(severity)]
        return f"\x1b[{code}m{text}\x1b[0m"

    write = out.write
    write(
        f"Replayed {stats.events:,} events from {stats.files} input(s)"
        f" ({stats.duplicates:,} duplicates skipped, {stats.rejected:,} records rejected)\n\n"
    )
    kinds = Counter(v.kind.value for v in stats.sessions.values())
    summary = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    flagged = sorted(
        (s for s in stats.sessions.values() if s.session_id in stats.session_findings),
        key=lambda s: (-max(stats.session_findings[s.session_id]), s.kind.value, s.session_id),
    )
    write(f"Sessions: {len(stats.sessions)} ({summary or 'none'}); {len(flagged)} with findings\n")
    if flagged:
        write(f"  {'kind':7} {'agent':12} {'principal':58} {'human':20} {'scope':14} findings\n")
        for session in flagged[:SESSION_ROWS]:
            counts = stats.session_findings[session.session_id]
            worst = max(counts)
            write(
                f"  {session.kind.value:7} {(session.agent or '-'):12} "
                f"{_clip(session.principal_arn or session.session_id, 58):58} "
                f"{_clip(_human(session), 20):20} {_clip(_scope(stats, session), 14):14} "
                f"{sum(counts.values())} (worst {paint(worst.label, worst)})"
                f"{_delegation(session)}\n"
            )
        if len(flagged) > SESSION_ROWS:
            write(f"  ... {len(flagged) - SESSION_ROWS} more sessions with findings\n")
    write("\nFindings by severity: ")
    parts = [
        paint(f"{sev.label} {stats.findings[sev]:,}", sev)
        for sev in sorted(Severity, reverse=True)
        if stats.findings[sev]
    ]
    write(" | ".join(parts) if parts else "none")
    write(f"   (alerts raised: {stats.alerts})\n")
    top = stats.top_findings()
    if top:
        write("\nTop findings:\n")
        for f in top:
            write(
                f"  {paint(f.severity.label.upper(), f.severity):8} "
                f"{f.event_time:%Y-%m-%d %H:%M:%S}  {f.kind}  {f.action or ''}\n"
                f"           {f.reason}\n"
            )
    if stats.responses:
        dry = all(r.dry_run for r in stats.responses)
        write("\nWould revoke (dry run: responses are disabled):\n" if dry else "\nRevoke:\n")
        for r in stats.responses:
            who = f"agent {r.agent or 'unidentified'}"
            if r.human:
                who += f" for {r.human}"
            write(
                f"  {r.session_id}  {who}  {r.principal or ''}\n"
                f"      triggered by event {r.event_id} at {r.event_time:%Y-%m-%d %H:%M:%S}"
                f" (scope {r.scope})\n"
            )
    else:
        write("\nNothing to revoke.\n")


def _human(session: SessionView) -> str:
    if session.kind is SessionKind.AGENT and session.on_human_credentials:
        return f"{session.human} (!)" if session.human else "(person)"
    return session.human or "-"


def _delegation(session: SessionView) -> str:
    if session.credentials is CredentialRelation.DELEGATED:
        return f"  delegated by {session.delegated_by or 'a person'}"
    return ""


def _scope(stats: ReplayStats, session: SessionView) -> str:
    return stats.session_scopes.get(session.session_id, "-")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]
