"""Scope file validation messages, and reading scope files from disk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from detector.core.scope import parse_scopes
from detector.errors import ConfigError
from detector.scope_file import load_scopes


def good(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "ce-4821-fix",
        "match": {"source_identity": "agent-kiro-*"},
        "allow": {"actions": ["ce:Get*", "lambda:UpdateFunctionCode"]},
    }
    raw.update(changes)
    return raw


def error(document: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_scopes(document, source="scopes.yaml")
    return str(caught.value)


def scope_error(**changes: Any) -> str:
    return error({"scopes": [good(), {**good(name="second"), **changes}]})


# -- document and scope shape --------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (None, "scopes.yaml: the file is empty"),
        (["a"], "scopes.yaml: expected a mapping with a 'scopes' list at the top level, got a"),
        ({}, "scopes.yaml: missing 'scopes'"),
        ({"scope": []}, "scopes.yaml: unknown key 'scope' (did you mean 'scopes'?)"),
        ({"scopes": "ce"}, "scopes.yaml: scopes: expected a list of scopes, got a string ('ce')"),
        ({"scopes": [good(), "x"]}, "scopes.yaml: scopes[1]: expected a mapping, got a string"),
    ],
)  # fmt: skip
def test_document_shape_errors(document: Any, expected: str) -> None:
    assert error(document).startswith(expected)


def test_zero_scopes_is_valid() -> None:
    assert len(parse_scopes({"scopes": []}, source="scopes.yaml")) == 0
    assert len(parse_scopes({"scopes": None}, source="scopes.yaml")) == 0


def test_missing_name_is_reported_by_index() -> None:
    raw = good()
    del raw["name"]
    assert error({"scopes": [good(), good(name="b"), good(name="c"), raw]}) == (
        "scopes.yaml: scopes[3]: name: missing (every scope needs a name)"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (42, "scopes.yaml: scopes[1]: name: expected a string, got a number (42)"),
        ("  ", "scopes.yaml: scopes[1]: name: is empty"),
        (" x", "scopes.yaml: scopes[1]: name: ' x' has leading or trailing whitespace"),
    ],
)
def test_bad_name(name: Any, expected: str) -> None:
    assert scope_error(name=name) == expected


def test_duplicate_name() -> None:
    assert error({"scopes": [good(), good(name="other"), good()]}) == (
        "scopes.yaml: scopes[2]: name: duplicate name 'ce-4821-fix' (already used by scopes[0])"
    )


# -- unknown keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"alow": {}}, "scope 'second': unknown key 'alow' (did you mean 'allow'?)"),
        ({"match": {"agnet": "kiro"}},
         "scope 'second': match: unknown key 'agnet' (did you mean 'agent'?)"),
        ({"allow": {"actions": ["*"], "region": ["us-east-1"]}},
         "scope 'second': allow: unknown key 'region' (did you mean 'regions'?)"),
        ({"deny": {"action": ["*"]}},
         "scope 'second': deny: unknown key 'action' (did you mean 'actions'?)"),
        ({"deny": {"regions": ["us-east-1"]}},
         "scope 'second': deny: unknown key 'regions' (expected one of actions, resources)"),
        ({"zzz": 1}, "scope 'second': unknown key 'zzz' (expected one of name, description"),
    ],
)  # fmt: skip
def test_unknown_keys_suggest_the_closest(changes: dict[str, Any], expected: str) -> None:
    assert scope_error(**changes).startswith(f"scopes.yaml: {expected}")


# -- match ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({}, "match: is empty (a scope without match fields would bind every session)"),
        ("agent-*", "match: expected a mapping, got a string ('agent-*')"),
        ({"agent": ["kiro"]}, "match.agent: expected a string, got a list"),
        ({"agent": ""}, "match.agent: is an empty string"),
        ({"tags": ["task"]}, "match.tags: expected a mapping, got a list"),
        ({"tags": {}}, "match.tags: is empty (give at least one tag key)"),
        ({"tags": {"task": 4821}}, "match.tags.task: expected a string, got a number (4821)"),
        ({"account": "12345"}, "match.account: '12345' is not an account id (12 digits)"),
        ({"account": 12345}, "match.account: 12345 is a number, not a 12-digit account id"),
    ],
)
def test_match_errors(match: Any, expected: str) -> None:
    assert scope_error(match=match).startswith(f"scopes.yaml: scope 'second': {expected}")


def test_missing_match() -> None:
    raw = good()
    del raw["match"]
    assert error({"scopes": [raw]}).startswith("scopes.yaml: scope 'ce-4821-fix': match: missing")


def test_unquoted_twelve_digit_account_is_accepted() -> None:
    scopes = parse_scopes({"scopes": [good(match={"account": 123456789012})]}, source="scopes.yaml")
    assert scopes.scopes[0].match[0][1] == "123456789012"


# -- allow and deny ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        ("ce:*", "allow: expected a mapping, got a string"),
        ({}, "allow.actions: missing"),
        ({"actions": []}, "allow.actions: is empty (use ['*'] to allow every action)"),
        ({"actions": "ce:Get*"}, "allow.actions: expected a list of strings, got a string"),
        ({"actions": ["ce:Get*", "lambda UpdateFunctionCode"]},
         "allow.actions[1]: 'lambda UpdateFunctionCode' is not an IAM action pattern "
         "(expected service:Action or *)"),
        ({"actions": ["s3:Get:Object"]}, "allow.actions[0]: 's3:Get:Object' is not an IAM"),
        ({"actions": ["Delete*"]}, "allow.actions[0]: 'Delete*' is not an IAM action pattern"),
        ({"actions": [7]}, "allow.actions[0]: expected a string, got a number (7)"),
        ({"actions": ["*"], "resources": []}, "allow.resources: is empty (omit the key"),
        ({"actions": ["*"], "resources": ["lambda:function:ce-*"]},
         "allow.resources[0]: 'lambda:function:ce-*' is not an ARN pattern"),
        ({"actions": ["*"], "regions": ["us_east_1"]},
         "allow.regions[0]: 'us_east_1' is not a region pattern"),
        ({"actions": ["*"], "regions": ["US-EAST-1"]},
         "allow.regions[0]: 'US-EAST-1' is not a region pattern (expected e.g. us-east-1 or eu-*) "
         "(regions are lowercase)"),
        ({"actions": ["*"], "regions": ["us-east"]}, "allow.regions[0]: 'us-east' is not a region"),
        ({"actions": ["*"], "regions": ["us-east-1a"]},
         "allow.regions[0]: 'us-east-1a' is an availability zone, not a region"),
        ({"actions": ["*"], "regions": "us-east-1"}, "allow.regions: expected a list of strings"),
        ({"actions": ["*"], "accounts": ["1234"]},
         "allow.accounts[0]: '1234' is not an account id (12 digits) or a glob of one"),
        ({"actions": ["*"], "accounts": ["12345678901x"]}, "allow.accounts[0]: '12345678901x'"),
        ({"actions": ["*"], "accounts": [1234]},
         "allow.accounts[0]: 1234 is a number, not a 12-digit account id (quote account ids)"),
    ],
)  # fmt: skip
def test_allow_errors(allow: Any, expected: str) -> None:
    assert scope_error(allow=allow).startswith(f"scopes.yaml: scope 'second': {expected}")


def test_missing_allow() -> None:
    raw = good()
    del raw["allow"]
    assert "scope 'ce-4821-fix': allow: missing" in error({"scopes": [raw]})


def test_valid_globs_are_accepted() -> None:
    scopes = parse_scopes(
        {
            "scopes": [
                good(
                    allow={
                        "actions": ["*", "*:Describe*", "s3:Get?bject", "route53domains:*"],
                        "resources": ["*", "arn:aws:s3:::bucket/*", "arn:*"],
                        "regions": ["us-east-1", "us-gov-west-1", "eu-*", "*", "ap-?outh-1"],
                        "accounts": ["123456789012", "1234*", 123456789012],
                    },
                    deny={"actions": [], "resources": ["arn:aws:s3:::prod-*"]},
                )
            ]
        },
        source="scopes.yaml",
    )
    only = scopes.scopes[0]
    assert only.allow_accounts is not None
    assert only.allow_accounts.patterns == ("123456789012", "1234*", "123456789012")


@pytest.mark.parametrize(
    ("deny", "expected"),
    [
        (["*:Delete*"], "deny: expected a mapping, got a list"),
        ({"actions": "*:Delete*"}, "deny.actions: expected a list of strings, got a string"),
        ({"actions": ["Delete"]}, "deny.actions[0]: 'Delete' is not an IAM action pattern"),
        ({"resources": ["prod-*"]}, "deny.resources[0]: 'prod-*' is not an ARN pattern"),
    ],
)
def test_deny_errors(deny: Any, expected: str) -> None:
    assert scope_error(deny=deny).startswith(f"scopes.yaml: scope 'second': {expected}")


# -- expires, on_violation, description ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01T00:00:00Z", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T02:00:00+02:00", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01 00:00:00", datetime(2026, 12, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1), datetime(2026, 12, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1, 1, tzinfo=timezone(timedelta(hours=1))),
         datetime(2026, 12, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1).date(), datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_expires_accepts_strings_datetimes_and_dates(value: Any, expected: datetime) -> None:
    scopes = parse_scopes({"scopes": [good(expires=value)]}, source="scopes.yaml")
    expires = scopes.scopes[0].expires
    assert expires == expected
    assert expires is not None and expires.tzinfo is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("next tuesday", "expires: 'next tuesday' is not an ISO 8601 time"),
        (1_700_000_000, "expires: expected a timestamp, got a number (1700000000)"),
        (["2026-12-01"], "expires: expected a timestamp, got a list"),
    ],
)
def test_bad_expires(value: Any, expected: str) -> None:
    assert scope_error(expires=value).startswith(f"scopes.yaml: scope 'second': {expected}")


def test_on_violation() -> None:
    assert scope_error(on_violation="kill") == (
        "scopes.yaml: scope 'second': on_violation: 'kill' is not one of alert, revoke, approve"
    )
    default = parse_scopes({"scopes": [good()]}, source="s")
    assert default.scopes[0].on_violation == "alert"
    revoke = parse_scopes({"scopes": [good(on_violation="revoke")]}, source="s")
    assert revoke.scopes[0].on_violation == "revoke"


def test_description() -> None:
    assert scope_error(description=["x"]) == (
        "scopes.yaml: scope 'second': description: expected a string, got a list"
    )
    scopes = parse_scopes({"scopes": [good(description="Fix rounding")]}, source="s")
    assert scopes.scopes[0].description == "Fix rounding"


# -- files ---------------------------------------------------------------------------------

YAML_TEXT = """\
scopes:
  - name: ce-4821-fix
    description: "Fix rounding in the Cost Explorer forecast lambda"
    match:
      source_identity: "agent-kiro-*"
      tags: {task: CE-4821}
    allow:
      actions: ["ce:Get*", "lambda:UpdateFunctionCode"]
      resources: ["arn:aws:lambda:*:*:function:ce-*"]
      regions: ["us-east-1"]
      accounts: ["123456789012"]
    deny: {actions: ["*:Delete*"]}
    expires: 2026-12-01T00:00:00Z
    on_violation: revoke
"""


def test_load_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text(YAML_TEXT)
    scopes = load_scopes(path)
    assert scopes.source == str(path)
    only = scopes.scopes[0]
    assert (only.name, only.on_violation, only.source) == ("ce-4821-fix", "revoke", str(path))
    assert only.expires == datetime(2026, 12, 1, tzinfo=UTC)
    assert only.tags[0][:2] == ("task", "CE-4821")
    assert only.allow_actions.patterns == ("ce:Get*", "lambda:UpdateFunctionCode")


@pytest.mark.parametrize("name", ["scopes.json", "scopes.conf"])
def test_load_json_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {"scopes": [good(expires="2026-12-01T00:00:00Z", allow={"actions": ["s3:Get*"]})]}
        )
    )
    only = load_scopes(path).scopes[0]
    assert only.expires == datetime(2026, 12, 1, tzinfo=UTC)
    assert only.allow_actions.patterns == ("s3:Get*",)


def test_load_empty_scope_list(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yml"
    path.write_text("scopes: []\n")
    assert len(load_scopes(path)) == 0


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text("scopes:\n  - name: x\n    allow: {actions: [\n")
    with pytest.raises(ConfigError, match=r"scopes\.yaml: YAML syntax error at line 4, column 1"):
        load_scopes(path)


def test_json_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "scopes.json"
    path.write_text('{"scopes": [\n  {"name": "x",}\n]}\n')
    with pytest.raises(ConfigError, match=r"scopes\.json: JSON syntax error at line 2, column 16"):
        load_scopes(path)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text(
        "scopes:\n  - name: x\n    match: {agent: kiro}\n"
        "    allow: {actions: ['*']}\n    allow: {actions: ['s3:*']}\n"
    )
    with pytest.raises(ConfigError, match=r"line 5, column 5: found duplicate key 'allow'"):
        load_scopes(path)


def test_validation_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text("scopes:\n  - name: x\n    match: {agent: kiro}\n    allow: {actions: [ce]}\n")
    with pytest.raises(ConfigError) as caught:
        load_scopes(path)
    assert str(caught.value) == (
        f"{path}: scope 'x': allow.actions[0]: 'ce' is not an IAM action pattern "
        "(expected service:Action or *)"
    )


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read scope file"):
        load_scopes(missing)
    binary = tmp_path / "scopes.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_scopes(binary)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_scopes(path)
