"""The session pages as HTML: pure functions from what the store and the pipeline know to a
document. No script, no build step; controls are plain forms posting to the approval API.
Everything that came from outside (CloudTrail, scope files, people) goes through `_e`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from detector.approvals.decisions import same_person
from detector.core.scope import Scope
from detector.core.session_view import SessionView
from detector.state.approvals import ApprovalRow, SessionSummary, TimelineEntry, iso
from detector.state.gate_verdicts import GateVerdictRow
from detector.state.tasks import TaskRow
from detector.web.auth import Viewer
from detector.web.timeline_html import gate_summary, severity_summary, timeline_html

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1b1f24;color:#fff;padding:10px 24px;display:flex;gap:16px;align-items:center}
header a{color:#cfe3ff}header .who{margin-left:auto;font-size:13px}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:20px 0 8px}
.card{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:12px 16px;margin:10px 0}
.hold{border-left:6px solid #d97706}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e7eb;vertical-align:top}
th{font-size:13px;color:#57606a;font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dt{color:#57606a}
dd{margin:0;word-break:break-all}
.b{display:inline-block;white-space:nowrap;padding:1px 7px;border-radius:10px;font-size:12px}
.b{font-weight:600}
.critical{background:#b42318;color:#fff}.high{background:#e8590c;color:#fff}
.medium{background:#f5c04a}.low{background:#d0e6ff}.info{background:#e5e7eb}
.out{background:#fde2e1;color:#8a1c14}.in{background:#dcfce7;color:#14532d}
.pending{background:#fef3c7;color:#7c4a03}.approved{background:#dcfce7;color:#14532d}
.denied,.expired{background:#e5e7eb;color:#374151}
.warn{color:#8a1c14;font-weight:600}
button{font:inherit;padding:6px 14px;border-radius:5px;border:1px solid #8c959f;cursor:pointer}
button.approve{background:#1f6feb;color:#fff;border-color:#1f6feb}
form.inline{display:inline;margin-right:8px}input[type=text],input[type=password]{font:inherit;padding:5px}
.muted{color:#57606a;font-size:13px}td.t,th.t{white-space:nowrap}
td ul{margin:2px 0 2px 18px;padding:0}tr.out-row td{background:#fff8f7}
tr.response td{background:#fff4e0;border-top:2px solid #d97706}
tr.approval td{background:#f0f6ff}.summary{font-size:16px;font-weight:600}
tr.gate.blocked td{background:#fff8f7}code.cmd{white-space:pre-wrap;word-break:break-all}
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPage:
    session_id: str
    summary: SessionSummary | None
    live: SessionView | None
    scope: Scope | None
    entries: Sequence[TimelineEntry]
    approvals: Sequence[ApprovalRow]
    viewer: Viewer
    # The viewer may revoke the session from here (`api.revokers`) and it can be targeted.
    may_revoke: bool = False
    dry_run: bool = True
    # The pre-flight gate's verdicts for the session (and its task), newest first.
    verdicts: Sequence[GateVerdictRow] = ()
    # The registered task the session is, or runs under.
    task: TaskRow | None = None


def credential_origin(live: SessionView | None, summary: SessionSummary | None) -> str:
    """ "inherited" when the agent runs on its person's own credentials, "delegated" when it
    has credentials of its own on the person's behalf, "" when unknown. `on_human_credentials`
    is what attribution says about this today."""
    if (live is not None and live.on_human_credentials) or (
        summary is not None and summary.on_human_credentials
    ):
        return "inherited"
    if (live is not None and live.human) or (summary is not None and summary.human):
        return "delegated"
    return ""


def session_origin(
    live: SessionView | None, summary: SessionSummary | None, task: TaskRow | None
) -> str:
    """As `credential_origin`, for any session page: a session only the gate has reported
    (no CloudTrail entries yet) says nothing about its credentials, unless it is a task's,
    whose credentials were minted for it."""
    if live is None and (summary is None or not summary.entries):
        return "delegated" if task is not None else ""
    return credential_origin(live, summary)


def session_page(page: SessionPage) -> str:
    s, live, task = page.summary, page.live, page.task
    agent = (live.agent if live else None) or (s.agent if s else None)
    agent = agent or (task.agent if task else None) or "unidentified agent"
    human = (live.human if live else None) or (s.human if s else None)
    human = human or (task.owner if task else None)
    origin = session_origin(live, s, task)
    title = f"Agent {agent}" + (f" acting for {human}" if human else "")
    body = [f"<h1>{_e(title)}</h1>"]
    if origin == "inherited":
        body.append(
            '<p class="warn">Inherited credentials: the agent runs on '
            f"{_e(human or 'the person')}'s own credentials, with all of that person's access."
            "</p>"
        )
    elif origin == "delegated":
        body.append("<p>Delegated credentials: the agent has its own session for this person.</p>")
    body.append(f'<p class="summary">{_e(severity_summary(page.entries))}</p>')
    if gated := gate_summary(page.verdicts):
        body.append(f'<p class="summary">{_e(gated)}</p>')
    body.append(_approvals_block(page))
    body.append(_revoke_block(page, human))
    body.append(_facts(page, agent, human, origin))
    body.append(
        _scope_block(page.scope, (s.scope if s else None) or (task.scope if task else None))
    )
    body.append(timeline_html(page.entries, page.approvals, page.verdicts))
    return _document(title, page.viewer, "".join(body))


def sessions_page(
    summaries: Sequence[SessionSummary],
    *,
    viewer: Viewer,
    live: dict[str, SessionView],
    pending: dict[str, int],
) -> str:
    rows = []
    for s in summaries:
        link = f"/sessions/{quote(s.session_id, safe='')}"
        status = "active" if s.session_id in live else "no longer tracked"
        waiting = pending.get(s.session_id, 0)
        hold = f' <span class="b pending">{waiting} awaiting approval</span>' if waiting else ""
        rows.append(
            "<tr>"
            f'<td><a href="{_e(link)}">{_e(s.agent or "unidentified")}</a>{hold}</td>'
            f"<td>{_e(s.human or '')}</td>"
            f"<td>{_e(session_origin(live.get(s.session_id), s, None))}</td>"
            f"<td>{_e(s.scope or 'no scope')}</td>"
            f"<td>{_e(iso(s.last_at))}</td><td>{s.entries}</td><td>{_e(status)}</td>"
            "</tr>"
        )
    table = (
        "<table><tr><th>Agent</th><th>Acting for</th><th>Credentials</th><th>Scope</th>"
        "<th>Last activity</th><th>Timeline entries</th><th>Status</th></tr>"
        + ("".join(rows) or '<tr><td colspan="7">No agent session has findings.</td></tr>')
        + "</table>"
    )
    return _document(
        "Agent sessions",
        viewer,
        "<h1>Agent sessions</h1>"
        '<p class="muted">Agent sessions with findings, most recent first.</p>' + table,
    )


def login_page(*, next_path: str, error: str | None = None) -> str:
    problem = f'<p class="warn">{_e(error)}</p>' if error else ""
    form = (
        '<form method="post" action="/login" class="card">'
        f'<input type="hidden" name="next" value="{_e(next_path)}">'
        '<label>Access token <input type="password" name="token" autocomplete="off" '
        'autofocus></label> <button class="approve" type="submit">Log in</button></form>'
    )
    return _document("Log in", None, f"<h1>Log in to TrailGuard</h1>{problem}{form}")


def error_page(status: int, message: str, *, back: str | None, viewer: Viewer | None) -> str:
    link = f'<p><a href="{_e(back)}">Back</a></p>' if back else ""
    return _document(
        f"Error {status}", viewer, f'<h1>Not done</h1><p class="warn">{_e(message)}</p>{link}'
    )


# -- parts ---------------------------------------------------------------------------------


def _approvals_block(page: SessionPage) -> str:
    waiting = [a for a in page.approvals if a.pending]
    if not waiting:
        return ""
    cards = []
    for a in waiting:
        what = _HELD.get(a.action, a.action)
        controls = _decision_forms(a, page.viewer, page.session_id)
        cards.append(
            f'<div class="card hold" id="approval-{_e(a.approval_id)}">'
            f'<span class="b pending">awaiting a second person</span> '
            f"<strong>{_e(what)}</strong> (approval {_e(a.approval_id)})"
            f"<p>{_e(a.reason)}</p>"
            f'<p class="muted">Requested {_e(iso(a.requested_at))}; if nobody decides by '
            f"{_e(iso(a.expires_at))} it is decided by default.</p>{controls}</div>"
        )
    return "<h2>Held for approval</h2>" + "".join(cards)


_HELD = {"revoke-session": "Revoke this session", "exceed-scope": "Let the agent exceed its scope"}


def _revoke_block(page: SessionPage, human: str | None) -> str:
    if not page.may_revoke or same_person(page.viewer.person, human):
        return ""
    taken = [a for a in page.approvals if a.action == "revoke-session" and a.status != "denied"]
    if any(a.pending or a.outcome == "approve" for a in taken):
        return ""
    back = f"/sessions/{quote(page.session_id, safe='')}"
    hidden = f'<input type="hidden" name="next" value="{_e(back)}">'
    if page.viewer.csrf is not None:
        hidden += f'<input type="hidden" name="csrf" value="{_e(page.viewer.csrf)}">'
    dry = (
        '<p class="muted">Responses are off (responses.enabled: false): the revocation is '
        "recorded, not carried out.</p>"
        if page.dry_run
        else ""
    )
    return (
        '<h2>Contain</h2><div class="card">'
        f'<form method="post" action="/v1/sessions/{_e(quote(page.session_id, safe=""))}/revoke">'
        f'{hidden}<input type="text" name="note" placeholder="why (optional)"> '
        '<button class="approve" type="submit" name="decision" value="revoke">'
        f"Revoke this session now</button></form>{dry}</div>"
    )


def _decision_forms(a: ApprovalRow, viewer: Viewer, session_id: str) -> str:
    if same_person(viewer.person, a.human):
        return (
            f'<p class="warn">You ({_e(viewer.person)}) are the person this session acts for: '
            "a second person must decide.</p>"
        )
    back = f"/sessions/{quote(session_id, safe='')}"
    hidden = f'<input type="hidden" name="next" value="{_e(back)}">'
    if viewer.csrf is not None:
        hidden += f'<input type="hidden" name="csrf" value="{_e(viewer.csrf)}">'
    base = f"/v1/approvals/{quote(a.approval_id, safe='')}"
    verb = {"revoke-session": "Approve revocation", "exceed-scope": "Approve this command"}.get(
        a.action, "Approve"
    )
    return (
        f'<form class="inline" method="post" action="{_e(base)}/approve">{hidden}'
        '<input type="text" name="note" placeholder="note (optional)"> '
        f'<button class="approve" type="submit" name="decision" value="approve">{_e(verb)}</button>'
        f'</form><form class="inline" method="post" action="{_e(base)}/deny">{hidden}'
        '<button type="submit" name="decision" value="deny">Deny</button></form>'
    )


def _facts(page: SessionPage, agent: str, human: str | None, origin: str) -> str:
    s, live = page.summary, page.live
    principal = (live.principal_arn if live else None) or (s.principal if s else None)
    rows = [
        ("Session", page.session_id),
        ("Agent", agent),
        ("Acting for", human or "unknown"),
        ("Credentials", origin or "unknown"),
        ("Principal", principal or "unknown"),
        ("Tracked now", "yes" if live else "no (ended, idle or on another instance)"),
    ]
    if live is not None and live.evidence:
        rows.append(("Why an agent", "; ".join(live.evidence)))
    if page.task is not None:
        t = page.task
        state = f"{t.status}, credentials until {iso(t.expires_at)}"
        rows.append(("Task", f"{t.task_id} ({state})"))
    if s is not None:
        rows.append(("Last activity", iso(s.last_at)))
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return f'<h2>Who</h2><div class="card"><dl>{items}</dl></div>'


def _scope_block(scope: Scope | None, name: str | None) -> str:
    if scope is None:
        text = f"Scope {name} (not in the loaded scope file)" if name else "No task scope bound"
        return f'<h2>Scope</h2><div class="card">{_e(text)}</div>'
    rows = [
        ("Name", scope.name),
        ("Task", scope.description or ""),
        ("Allows", ", ".join(scope.allow_actions.patterns) or "nothing"),
        ("Denies", ", ".join(scope.deny_actions.patterns) or "nothing"),
        ("On violation", scope.on_violation),
        ("Expires", iso(scope.expires) if scope.expires else "never"),
    ]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return f'<h2>Scope</h2><div class="card"><dl>{items}</dl></div>'


def _document(title: str, viewer: Viewer | None, body: str) -> str:
    who = ""
    if viewer is not None:
        who = f'<span class="who">Signed in as {_e(viewer.person)}</span>'
        if viewer.csrf is not None:
            who += (
                '<form method="post" action="/logout" class="inline">'
                f'<input type="hidden" name="csrf" value="{_e(viewer.csrf)}">'
                "<button type=submit>Log out</button></form>"
            )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · TrailGuard</title><style>{_STYLE}</style></head><body>"
        f'<header><strong>TrailGuard</strong><a href="/sessions">Agent sessions</a>{who}'
        f"</header><main>{body}</main></body></html>"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
