"""A compiled scope written back as a document compiles to the same scope: what the service
hands the gate for a task is what its scope file says."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from detector.core.scope import Scope, parse_scopes
from detector.core.scope_document import scope_document
from detector.errors import ConfigError
from detector.scope_file import load_scopes

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    ROOT / "detector" / "data" / "demo" / "scopes.yaml",
    ROOT / "deploy" / "scopes.yaml",
    ROOT / "tests" / "gate" / "scopes.yaml",
]


def _again(scope: Scope) -> Scope:
    # Through JSON, as the service sends it.
    document = orjson.loads(orjson.dumps({"scopes": [scope_document(scope)]}))
    (parsed,) = parse_scopes(document, source="service").scopes
    return replace(parsed, source=scope.source)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.parent.name)
def test_every_shipped_scope_round_trips(path: Path) -> None:
    scopes = load_scopes(path).scopes
    assert scopes
    for scope in scopes:
        assert _again(scope) == scope


GLOB = st.text(alphabet="abcz09-*?", min_size=1, max_size=6)
ACTION = st.one_of(st.just("*"), st.builds(lambda s, a: f"{s}:{a}", GLOB, GLOB))
ARN = st.builds(lambda s: f"arn:aws:s3:::{s}", GLOB)
REGION = st.sampled_from(["us-east-1", "eu-west-*", "*", "ap-south-2"])
ACCOUNT = st.sampled_from(["111122223333", "1111*", "*"])
TIME = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    match: dict[str, Any] = {"agent": draw(GLOB)}
    if draw(st.booleans()):
        match["role_arn"] = draw(ARN)
    if draw(st.booleans()):
        match["tags"] = {"task": draw(GLOB)}
    allow: dict[str, Any] = {"actions": draw(st.lists(ACTION, min_size=1, max_size=4))}
    for key, values in (("resources", ARN), ("regions", REGION), ("accounts", ACCOUNT)):
        if draw(st.booleans()):
            allow[key] = draw(st.lists(values, min_size=1, max_size=3))
    document: dict[str, Any] = {"name": draw(GLOB), "match": match, "allow": allow}
    deny = {
        "actions": draw(st.lists(ACTION, max_size=3)),
        "resources": draw(st.lists(ARN, max_size=2)),
    }
    if draw(st.booleans()):
        document["deny"] = deny
    if draw(st.booleans()):
        document["expires"] = draw(TIME).isoformat()
    if draw(st.booleans()):
        document["description"] = draw(st.text(max_size=20))
    document["on_violation"] = draw(st.sampled_from(["alert", "revoke", "approve"]))
    return document


@given(documents())
def test_generated_scopes_round_trip(document: dict[str, Any]) -> None:
    try:
        (scope,) = parse_scopes({"scopes": [document]}, source="generated").scopes
    except ConfigError:
        assume(False)
        raise
    assert _again(scope) == scope
