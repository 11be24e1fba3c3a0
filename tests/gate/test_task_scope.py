"""The scope from the task the agent runs under (TRAILGUARD_TASK): read from the task
registry in the state store, or from the service, and what blocks when the task no longer
stands or cannot be found."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from detector.scope_file import load_scopes
from detector.state.sqlite import SqliteStateStore
from detector.state.tasks import TaskRow
from tests.gate.conftest import NOW, SCOPES, run_gate
from tests.gate.service import Served, serve

READ = "aws cloudformation describe-stacks --stack-name ce-api --region us-east-1"
DELETE = "aws cloudformation delete-stack --stack-name ce-api --region us-east-1"
ACTIVE, ENDED, EXPIRED = "a1a1a1a1a1a1", "e2e2e2e2e2e2", "f3f3f3f3f3f3"


def _task(task_id: str, *, scope: str = "ce-fix", hours: float = 1) -> TaskRow:
    return TaskRow(
        task_id=task_id,
        agent="claude-code",
        owner="alice@example.com",
        scope=scope,
        role_arn="arn:aws:iam::111122223333:role/agent-ce",
        source_identity=f"agent-claude-code-{task_id}",
        created_at=NOW - timedelta(hours=2),
        expires_at=NOW + timedelta(hours=hours),
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state.db"
    with SqliteStateStore(path) as store:
        store.put_task(_task(ACTIVE))
        store.put_task(_task(ENDED))
        store.end_task(ENDED, at=NOW - timedelta(minutes=30))
        store.put_task(_task(EXPIRED, hours=-1))
        store.put_task(_task("d4d4d4d4d4d4", scope="gone"))
    yield path


def _env(task: str, **more: str) -> dict[str, str]:
    return {"TRAILGUARD_TASK": task, **more}


def test_an_active_task_gets_its_scope_from_the_registry(registry: Path) -> None:
    env = _env(ACTIVE, TRAILGUARD_STATE=str(registry), TRAILGUARD_SCOPES=str(SCOPES))
    allowed = run_gate(["--", READ], environ=env)
    assert allowed.code == 0, allowed.stderr
    verdict = orjson.loads(allowed.stdout)
    assert verdict["scope"] == "ce-fix"
    blocked = run_gate(["--", DELETE], environ=env)
    assert blocked.code == 2 and "cloudformation:DeleteStack" in blocked.stderr
    # The file's other scope is not the task's: naming it is refused, not obeyed.
    other = run_gate(["--scope", "teardown", "--", DELETE], environ=env)
    assert other.code == 2
    assert f"task {ACTIVE} runs under scope 'ce-fix'" in other.stderr


@pytest.mark.parametrize(
    ("task", "says"),
    [
        (ENDED, f"task {ENDED} (scope ce-fix) ended at 2026-03-02T09:30:00Z"),
        (
            EXPIRED,
            f"task {EXPIRED} (scope ce-fix): its credentials expired at 2026-03-02T09:00:00Z",
        ),
        ("000000000000", "task 000000000000 is not in the task registry at"),
        ("d4d4d4d4d4d4", "has no scope named 'gone' (the scope of task d4d4d4d4d4d4)"),
    ],
)
def test_a_task_that_does_not_stand_blocks_its_aws_calls(
    registry: Path, task: str, says: str
) -> None:
    env = _env(task, TRAILGUARD_STATE=str(registry), TRAILGUARD_SCOPES=str(SCOPES))
    outcome = run_gate(["--", READ], environ=env)
    assert outcome.code == 2
    assert says in outcome.stderr
    # Lines without AWS calls need no scope, so they still run.
    assert run_gate(["--", "git status"], environ=env).code == 0


def test_a_registry_that_cannot_be_read_blocks(tmp_path: Path) -> None:
    env = _env(ACTIVE, TRAILGUARD_STATE=str(tmp_path / "nope.db"), TRAILGUARD_SCOPES=str(SCOPES))
    outcome = run_gate(["--", READ], environ=env)
    assert outcome.code == 2 and "no state store at" in outcome.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    env["TRAILGUARD_STATE"] = str(garbage)
    outcome = run_gate(["--", READ], environ=env)
    assert outcome.code == 2 and "cannot be read" in outcome.stderr


def test_nowhere_to_look_the_task_up() -> None:
    nowhere = run_gate(["--", READ], environ=_env(ACTIVE))
    assert nowhere.code == 2
    assert "the gate cannot look it up" in nowhere.stderr
    assert "trailguard task exec" in nowhere.stderr
    # With a scope file, the file's scope is checked and the verdict says so.
    env = _env(ACTIVE, TRAILGUARD_SCOPES=str(SCOPES), TRAILGUARD_SCOPE="ce-fix")
    checked = run_gate(["--", READ], environ=env)
    assert checked.code == 0
    assert f"task {ACTIVE} was not looked up" in " ".join(orjson.loads(checked.stdout)["notes"])


def test_a_service_with_no_token_is_said_when_the_task_needs_it() -> None:
    env = _env(ACTIVE, TRAILGUARD_URL="http://127.0.0.1:9")
    outcome = run_gate(["--", READ], environ=env)
    assert outcome.code == 2 and "no token for the service" in outcome.stderr


@pytest.fixture
def service(registry: Path, tmp_path: Path) -> Iterator[Served]:
    with SqliteStateStore(registry) as store, serve(store, load_scopes(SCOPES), tmp_path) as up:
        yield up


def test_the_task_and_its_scope_from_the_service(service: Served) -> None:
    env = _env(ACTIVE, TRAILGUARD_URL=service.url, TRAILGUARD_TOKEN_FILE=str(service.token_file))
    allowed = run_gate(["--", READ], environ=env)
    assert allowed.code == 0, allowed.stderr
    assert orjson.loads(allowed.stdout)["scope"] == "ce-fix"
    blocked = run_gate(["--", DELETE], environ=env)
    assert blocked.code == 2 and "cloudformation:DeleteStack" in blocked.stderr
    ended = run_gate(["--", READ], environ={**env, "TRAILGUARD_TASK": ENDED})
    assert ended.code == 2 and f"task {ENDED} (scope ce-fix) ended" in ended.stderr
    unknown = run_gate(["--", READ], environ={**env, "TRAILGUARD_TASK": "000000000000"})
    assert unknown.code == 2 and "is not known to the service" in unknown.stderr
    gone = run_gate(["--", READ], environ={**env, "TRAILGUARD_TASK": "d4d4d4d4d4d4"})
    assert gone.code == 2 and "the service did not send its definition" in gone.stderr


def test_the_registry_names_the_scope_and_the_service_defines_it(
    service: Served, registry: Path
) -> None:
    env = _env(
        ACTIVE,
        TRAILGUARD_STATE=str(registry),
        TRAILGUARD_URL=service.url,
        TRAILGUARD_TOKEN_FILE=str(service.token_file),
    )
    assert run_gate(["--", READ], environ=env).code == 0
    assert run_gate(["--", DELETE], environ=env).code == 2


def test_a_service_that_refuses_or_is_down_blocks(service: Served, tmp_path: Path) -> None:
    bad = tmp_path / "bad.token"
    bad.write_text("not-the-token\n")
    env = _env(ACTIVE, TRAILGUARD_URL=service.url, TRAILGUARD_TOKEN_FILE=str(bad))
    refused = run_gate(["--no-journal", "--", READ], environ=env)
    assert refused.code == 2 and "HTTP 401" in refused.stderr
    env["TRAILGUARD_URL"] = "http://127.0.0.1:9"
    down = run_gate(["--", READ], environ=env)
    assert down.code == 2 and "did not answer" in down.stderr
