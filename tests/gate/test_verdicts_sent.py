"""Every verdict goes to the service when one is configured, and a send that fails never
changes the verdict: it is noted on stderr and in the journal."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from detector.gate import report
from detector.gate.decide import allow
from detector.gate.service import Service
from detector.scope_file import load_scopes
from detector.state.sqlite import SqliteStateStore
from detector.state.tasks import TaskRow
from tests.gate.conftest import NOW, SCOPES, run_gate
from tests.gate.service import PERSON, Served, serve

ARGS = ["--hook", "claude-code", "--scopes", str(SCOPES), "--scope", "ce-fix"]
DELETE = "aws cloudformation delete-stack --stack-name ce-api"
READ = "aws cloudformation describe-stacks --stack-name ce-api"
KEY = "ASIAEXAMPLETASK00042"


def bash(command: str) -> bytes:
    return orjson.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                         "tool_input": {"command": command}})  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def service(store: SqliteStateStore, tmp_path: Path) -> Iterator[Served]:
    with serve(store, load_scopes(SCOPES), tmp_path) as up:
        yield up


def _env(service: Served | str, token: Path, **more: str) -> dict[str, str]:
    url = service.url if isinstance(service, Served) else service
    return {"AWS_REGION": "us-east-1", "TRAILGUARD_URL": url,
            "TRAILGUARD_TOKEN_FILE": str(token), **more}  # fmt: skip


def _journal(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _counted(service: Served) -> dict[str, float]:
    return {
        labels["verdict"]: value
        for name, labels, value in service.metrics.samples()
        if name == "trailguard_gate_verdicts_total"
    }


def test_every_verdict_is_sent_and_linked_to_the_task(
    service: Served, store: SqliteStateStore, tmp_path: Path
) -> None:
    store.put_task(
        TaskRow(
            task_id="a1a1a1a1a1a1",
            agent="claude-code",
            owner="alice@example.com",
            scope="ce-fix",
            role_arn="arn:aws:iam::111122223333:role/agent-ce",
            source_identity="agent-claude-code-a1a1a1a1a1a1",
            created_at=NOW - timedelta(minutes=5),
            expires_at=NOW + timedelta(hours=1),
            access_key_id=KEY,
        )
    )
    journal = tmp_path / "gate.jsonl"
    env = _env(service, service.token_file, TRAILGUARD_TASK="a1a1a1a1a1a1",
               TRAILGUARD_AGENT="claude-code", TRAILGUARD_OWNER="alice@example.com",
               AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY="never-sent")  # fmt: skip
    args = [*ARGS, "--account", "111122223333"]
    assert run_gate(args, bash(DELETE), environ=env, journal=journal).code == 2
    assert run_gate(args, bash(READ), environ=env, journal=journal).code == 0
    assert run_gate(args, b"{", environ=env, journal=journal).code == 2

    stored = store.gate_verdicts(task_id="a1a1a1a1a1a1")
    assert [v.decision for v in stored] == ["block", "allow", "block"][::-1]
    blocked = stored[-1]
    assert (blocked.session_id, blocked.agent, blocked.owner, blocked.access_key_id) == (
        "a1a1a1a1a1a1", "claude-code", "alice@example.com", KEY)  # fmt: skip
    assert (
        blocked.command == DELETE and blocked.tool_name == "Bash" and blocked.hook == "claude-code"
    )
    assert blocked.scope == "ce-fix" and "cloudformation:DeleteStack" in blocked.reason
    assert blocked.detail["calls"][0]["actions"] == ["cloudformation:DeleteStack"]
    assert blocked.sent_by == PERSON and blocked.decided_at == NOW
    records = _journal(journal)
    assert [r["sent"] for r in records] == [True, True, True]
    assert [r["id"] for r in records][::-1] == [v.verdict_id for v in stored]
    assert "never-sent" not in journal.read_text()
    assert _counted(service) == {"allow": 1.0, "block": 2.0}
    # A blocked verdict puts its session on the session list.
    assert [s.session_id for s in store.recent_sessions()] == ["a1a1a1a1a1a1"]


def test_a_retried_send_is_stored_and_counted_once(
    service: Served, store: SqliteStateStore
) -> None:
    token = service.token_file.read_text().strip()
    record = report.verdict_record(
        allow("no AWS call in this command line"),
        verdict_id=report.new_verdict_id(),
        at=NOW,
        hook="generic",
        tool_name=None,
        line="ls",
        who=report.Who(agent="kiro", owner=None, session_id="ses-x"),
    )
    target = Service(url=service.url, token=token)
    assert report.send(target, record) is None
    assert report.send(target, record) is None
    assert [v.verdict_id for v in store.gate_verdicts(session_id="ses-x")] == [record["id"]]
    assert _counted(service) == {"allow": 1.0, "block": 0.0}
    # An allowed verdict does not list the session.
    assert store.recent_sessions() == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


@contextmanager
def _answering(status: int, body: bytes, *, hang: bool = False) -> Iterator[str]:
    """A loopback server that answers every request the same way (or never answers)."""
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if hang:
                release.wait(10)
                return
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("closed", "ConnectionRefusedError"),
        ("html", "JSONDecodeError"),
        ("error", "HTTP 500"),
        ("hang", "timed out"),
        ("bad-url", "must start with http:// or https://"),
    ],
)
def test_a_failed_send_changes_no_verdict(tmp_path: Path, where: str, says: str) -> None:
    token = tmp_path / "token"
    token.write_text("tok\n")
    journal = tmp_path / "gate.jsonl"
    with (
        _answering(200, b"<html>proxy</html>") as html,
        _answering(500, b"oops") as error,
        _answering(200, b"", hang=True) as hang,
    ):
        url = {"closed": f"http://127.0.0.1:{_closed_port()}", "html": html, "error": error,
               "hang": hang, "bad-url": "ftp://example.com"}[where]  # fmt: skip
        env = _env(url, token)
        blocked = run_gate(ARGS, bash(DELETE), environ=env, journal=journal)
        allowed = run_gate(ARGS, bash(READ), environ=env, journal=journal)
    assert blocked.code == 2 and allowed.code == 0, allowed.stderr
    for outcome in (blocked, allowed):
        assert "the verdict was not sent to" in outcome.stderr and says in outcome.stderr
    records = _journal(journal)
    assert [(r["decision"], r["sent"]) for r in records] == [("block", False), ("allow", False)]
    assert all(says in str(r["send_error"]) for r in records)


def test_a_refused_token_is_noted(service: Served, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("not-the-token\n")
    outcome = run_gate(ARGS, bash(READ), environ=_env(service, bad))
    assert outcome.code == 0 and "HTTP 401" in outcome.stderr


def test_no_service_sends_nothing_and_says_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "gate.jsonl"
    outcome = run_gate(ARGS, bash(READ), environ={"AWS_REGION": "us-east-1"}, journal=journal)
    assert outcome.code == 0 and outcome.stderr == ""
    assert "sent" not in _journal(journal)[0]


def test_an_unexpected_failure_while_sending_changes_no_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the network stack fell over")

    monkeypatch.setattr(Service, "call", broken)
    token = tmp_path / "token"
    token.write_text("tok\n")
    env = _env("http://127.0.0.1:9", token)
    blocked = run_gate(ARGS, bash(DELETE), environ=env)
    allowed = run_gate(ARGS, bash(READ), environ=env)
    assert (blocked.code, allowed.code) == (2, 0)
    assert (
        "not sent" in allowed.stderr
        and "RuntimeError: the network stack fell over" in allowed.stderr
    )
