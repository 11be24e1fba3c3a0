"""Settings of the two-person rule and the session page's links."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.approvals.settings import approval_settings
from detector.config import Settings, load_settings
from detector.errors import ConfigError
from detector.web.compose import check, session_url


def _settings(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_settings(path, env or {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("responses: {approval: sometimes}", "'responses.approval' must be one of none, required"),
        ("approvals: {default_outcome: maybe}", "'approvals.default_outcome' must be one of"),
        ("approvals: {expire_seconds: 0}", "'approvals.expire_seconds' must be at least 1"),
        ("approvals: {expire_seconds: soon}", "'approvals.expire_seconds' must be a non-negative"),
        ("approvals: {expiry: 5}", "unknown key 'approvals.expiry'"),
    ],
)
def test_bad_settings_name_their_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check(_settings(tmp_path, text))


def test_defaults_deny_after_an_hour(tmp_path: Path) -> None:
    settings = approval_settings(_settings(tmp_path, ""))
    assert (settings.expire_seconds, settings.default_outcome) == (3600, "deny")
    env = {"TRAILGUARD__APPROVALS__DEFAULT_OUTCOME": "approve"}
    assert approval_settings(_settings(tmp_path, "", env)).default_outcome == "approve"


def test_alerts_link_to_the_session_page(tmp_path: Path) -> None:
    assert session_url(_settings(tmp_path, ""), "ses-1") is None
    settings = _settings(tmp_path, "http: {public_url: 'https://trailguard.example/'}")
    assert session_url(settings, "ses-3cdc3999faa2cd89") == (
        "https://trailguard.example/sessions/ses-3cdc3999faa2cd89"
    )
    assert session_url(settings, "a/b c") == "https://trailguard.example/sessions/a%2Fb%20c"
