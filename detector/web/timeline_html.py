"""The session page's timeline: one row per CloudTrail event (its findings together, in or
out of scope, the alerts it raised), one per response, the approval's request and decision,
and the pre-flight gate's verdicts on AWS calls (blocked before they ran, or allowed), in
time order."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from detector.core.taxonomy import Severity
from detector.state.approvals import ApprovalRow, TimelineEntry
from detector.state.gate_verdicts import GateVerdictRow

OUT_OF_SCOPE_KINDS = frozenset(
    {
        "out-of-scope-action",
        "out-of-scope-resource",
        "out-of-scope-region",
        "out-of-scope-account",
        "scope-expired",
        "unscoped-agent",
    }
)


def event_groups(entries: Sequence[TimelineEntry]) -> dict[str, list[TimelineEntry]]:
    """Finding entries by the event that raised them, in first-seen order."""
    groups: dict[str, list[TimelineEntry]] = {}
    for entry in entries:
        if entry.kind == "finding":
            groups.setdefault(str(entry.record.get("event_id", entry.entry_key)), []).append(entry)
    return groups


def severity_summary(entries: Sequence[TimelineEntry]) -> str:
    """ "12 events with findings: 9 critical, 3 high; 8 out of scope"."""
    groups = event_groups(entries)
    if not groups:
        return "No findings recorded for this session."
    worst: Counter[str] = Counter()
    out = 0
    for findings in groups.values():
        worst[_worst(findings)] += 1
        out += any(f.record.get("kind") in OUT_OF_SCOPE_KINDS for f in findings)
    order = [s.label for s in sorted(Severity, reverse=True)]
    counts = ", ".join(f"{worst[label]} {label}" for label in order if worst[label])
    return f"{len(groups)} events with findings: {counts}; {out} out of scope."


def gate_summary(verdicts: Sequence[GateVerdictRow]) -> str:
    """ "Pre-flight gate: 2 calls blocked before they ran, 5 allowed." """
    checked = [v for v in verdicts if v.blocked or _checked_aws(v)]
    if not checked:
        return ""
    blocked = sum(1 for v in checked if v.blocked)
    return (
        f"Pre-flight gate: {blocked} command line(s) blocked before they ran, "
        f"{len(checked) - blocked} with AWS calls allowed."
    )


def timeline_html(
    entries: Sequence[TimelineEntry],
    approvals: Sequence[ApprovalRow],
    verdicts: Sequence[GateVerdictRow] = (),
) -> str:
    groups = event_groups(entries)
    alerts = [e for e in entries if e.kind == "alert"]
    lines: list[tuple[datetime, int, str]] = []
    for findings in groups.values():
        raised = [
            a
            for a in alerts
            if a.at == findings[0].at
            and a.record.get("kind") in {f.record.get("kind") for f in findings}
        ]
        lines.append((findings[0].at, len(lines), _event_row(findings, raised)))
    for entry in entries:
        if entry.kind == "response":
            lines.append((entry.at, len(lines), _response_row(entry, approvals)))
    for v in verdicts:
        # Lines without AWS calls (git, ls, ...) are journaled and stored, not shown.
        if v.blocked or _checked_aws(v):
            lines.append((v.decided_at, len(lines), _verdict_row(v)))
    for a in approvals:
        lines.append((a.requested_at, len(lines), _approval_row(a, decided=False)))
        if a.decided_at is not None:
            lines.append((a.decided_at, len(lines), _approval_row(a, decided=True)))
    lines.sort(key=lambda line: (line[0], line[1]))
    body = "".join(row for _, _, row in lines) or '<tr><td colspan="4">Nothing yet.</td></tr>'
    return (
        '<h2>Timeline</h2><table id="timeline"><tr><th class="t">Time (UTC)</th><th>Scope</th>'
        f"<th>Severity</th><th>What happened</th></tr>{body}</table>"
    )


def _event_row(findings: list[TimelineEntry], raised: list[TimelineEntry]) -> str:
    first = findings[0].record
    out = [f for f in findings if f.record.get("kind") in OUT_OF_SCOPE_KINDS]
    where = (
        '<span class="b out">out of scope</span>' if out else '<span class="b in">in scope</span>'
    )
    sev = _worst(findings)
    kinds = ", ".join(str(f.record.get("kind")) for f in findings)
    reasons = "".join(f"<li>{_e(f.record.get('reason', ''))}</li>" for f in findings)
    resources = ", ".join(str(r) for r in first.get("resources") or ())
    detail = (
        f"<strong>{_e(first.get('action') or kinds)}</strong> "
        f'<span class="muted">{_e(kinds)}</span><ul>{reasons}</ul>'
    )
    if resources:
        detail += f'<div class="muted">on {_e(resources)}</div>'
    if raised:
        paged = ", ".join(f"{a.record.get('kind')} ({a.severity})" for a in raised)
        detail += f'<div class="muted">alert raised: {_e(paged)}</div>'
    return (
        f'<tr class="event{" out-row" if out else ""}"><td class="t">{_e(_time(findings[0].at))}'
        f'</td><td>{where}</td><td><span class="b {_e(sev)}">{_e(sev)}</span></td>'
        f"<td>{detail}</td></tr>"
    )


def _response_row(entry: TimelineEntry, approvals: Sequence[ApprovalRow]) -> str:
    record = entry.record
    action = str(record.get("action", "response"))
    label = "Revocation of this session" if action == "revoke-session" else action
    state = "decided: recorded only (dry run)" if record.get("dry_run") else "decided"
    for a in approvals:
        if a.action == action:
            state = (
                f"held for a second person (approval {a.approval_id})"
                if a.pending
                else f"approval {a.status}" + (f" by {a.decided_by}" if a.decided_by else "")
            )
    return (
        f'<tr class="response"><td class="t">{_e(_time(entry.at))}</td><td></td><td></td>'
        f"<td><strong>{_e(label)}</strong>: {_e(state)}"
        f'<div class="muted">{_e(record.get("reason", ""))}</div></td></tr>'
    )


def _approval_row(a: ApprovalRow, *, decided: bool) -> str:
    if not decided:
        badge = '<span class="b pending">approval requested</span>'
        detail = f"{a.action} held for a second person (approval {a.approval_id})"
        at = a.requested_at
    else:
        assert a.decided_at is not None
        badge = f'<span class="b {_e(a.status)}">approval {_e(a.status)}</span>'
        detail = f"{a.action} {a.status} by {a.decided_by}" + (f": {a.note}" if a.note else "")
        at = a.decided_at
    return (
        f'<tr class="approval"><td class="t">{_e(_time(at))}</td><td></td><td>{badge}</td>'
        f"<td>{_e(detail)}</td></tr>"
    )


def _verdict_row(v: GateVerdictRow) -> str:
    if v.blocked:
        badge, row = '<span class="b out">blocked before it ran</span>', "gate blocked"
    else:
        badge, row = '<span class="b in">checked before it ran</span>', "gate allowed"
    actions = sorted({a for c in v.detail.get("calls", ()) for a in c.get("actions", ())})
    reasons = "".join(f"<li>{_e(line)}</li>" for line in v.reason.splitlines() if line.strip())
    detail = f'<code class="cmd">{_e(v.command or "(no command line)")}</code><ul>{reasons}</ul>'
    where = ", ".join(x for x in (v.tool_name, f"task {v.task_id}" if v.task_id else "") if x)
    if actions:
        detail += f'<div class="muted">{_e(", ".join(actions))}</div>'
    if where:
        detail += f'<div class="muted">{_e(where)}</div>'
    return (
        f'<tr class="{row}"><td class="t">{_e(_time(v.decided_at))}</td>'
        f"<td>{_e(v.scope or '')}</td><td>{badge}</td><td>{detail}</td></tr>"
    )


def _checked_aws(v: GateVerdictRow) -> bool:
    return any(
        c.get("kind") in ("aws", "tool") and c.get("actions") for c in v.detail.get("calls", ())
    )


def _worst(findings: Sequence[TimelineEntry]) -> str:
    labels = [f.severity for f in findings if f.severity]
    if not labels:
        return ""
    return max(labels, key=lambda label: Severity.parse(label))


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
