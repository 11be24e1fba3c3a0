"""Bearer tokens: hashed at rest, resolved to a person, bad files named."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.approvals.settings import ApiSettings, api_settings
from detector.approvals.tokens import TokenTable, hash_token, load_tokens, new_token
from detector.config import load_settings
from detector.errors import ConfigError
from tests.approvals.common import TOKENS, write_token_file


def test_a_token_resolves_to_its_person_and_nothing_else(tmp_path: Path) -> None:
    path = write_token_file(tmp_path / "tokens.yaml")
    table = load_tokens(ApiSettings(tokens_file=path), source="t")

    assert table.person(TOKENS["bob@example.com"]) == "bob@example.com"
    assert table.person(TOKENS["bob@example.com"] + "x") is None
    assert table.person("") is None and table.person(None) is None
    # Only hashes are stored: the file never holds a token.
    assert TOKENS["bob@example.com"] not in path.read_text()


def test_tokens_from_the_environment_join_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("api:\n  tokens_file: tokens.yaml\n")
    write_token_file(tmp_path / "tokens.yaml", {"bob": TOKENS["bob@example.com"]})
    dave = new_token()
    env = {"TRAILGUARD__API__TOKENS": f'{{"{hash_token(dave)}": dave@example.com}}'}
    settings = load_settings(config, env)

    table = load_tokens(api_settings(settings), source=settings.source)
    assert table.person(dave) == "dave@example.com"
    assert table.person(TOKENS["bob@example.com"]) == "bob"  # tokens_file relative to config


def test_a_plain_token_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text('"tok-plain-secret": bob@example.com\n')
    with pytest.raises(ConfigError) as caught:
        load_tokens(ApiSettings(tokens_file=path), source="t")
    assert "sha256:" in str(caught.value) and "tok-plain-secret" not in str(caught.value)


def test_unreadable_or_malformed_token_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_tokens(ApiSettings(tokens_file=tmp_path / "missing.yaml"), source="t")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must map token hashes"):
        load_tokens(ApiSettings(tokens_file=bad), source="t")
    empty_person = tmp_path / "empty.yaml"
    empty_person.write_text(f'"{hash_token("x")}": ""\n')
    with pytest.raises(ConfigError, match="non-empty"):
        load_tokens(ApiSettings(tokens_file=empty_person), source="t")


def test_settings_errors_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("api:\n  token_file: x\n")
    with pytest.raises(ConfigError, match=r"api\.token_file.*did you mean 'api\.tokens_file'"):
        api_settings(load_settings(config, {}))


def test_no_tokens_means_nobody() -> None:
    table = TokenTable({})
    assert len(table) == 0 and table.person("anything") is None
