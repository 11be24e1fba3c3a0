"""Configuration loading: YAML and TOML, environment overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.config import load_settings
from detector.core.taxonomy import Severity
from detector.errors import ConfigError


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, {})
    assert settings.responses.enabled is False
    assert settings.severity.alert_min is Severity.MEDIUM
    assert settings.scopes is None


def test_yaml_file_with_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "trailguard.yaml"
    path.write_text(
        "scopes: scopes.yaml\n"
        "catalog: {overrides: [extra.yaml]}\n"
        "severity: {alert_min: high, burst_threshold: 9}\n"
        "responses: {enabled: true}\n"
    )
    settings = load_settings(path, {})
    assert settings.scopes == tmp_path / "scopes.yaml"
    assert settings.catalog.overrides == (tmp_path / "extra.yaml",)
    assert settings.severity.alert_min is Severity.HIGH
    assert settings.severity.burst_threshold == 9
    assert settings.responses.enabled is True


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "trailguard.toml"
    path.write_text('[severity]\nrevoke_min = "high"\n[state]\ndedup_capacity = 10\n')
    settings = load_settings(path, {})
    assert settings.severity.revoke_min is Severity.HIGH
    assert settings.state.dedup_capacity == 10


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("responses: {enabled: false}\n")
    env = {
        "TRAILGUARD__RESPONSES__ENABLED": "true",
        "TRAILGUARD__SEVERITY__TIER_0": "critical",
        "HOME": "/x",
    }
    settings = load_settings(path, env)
    assert settings.responses.enabled is True
    assert settings.severity.tier_0 is Severity.CRITICAL


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severty: {}\n", "unknown key 'severty' (did you mean 'severity'?)"),
        (
            "severity: {alert_mn: high}\n",
            "unknown key 'severity.alert_mn' (did you mean 'severity.alert_min'?)",
        ),
        ("severity: {alert_min: loud}\n", "'severity.alert_min': unknown severity 'loud'"),
        ("responses: {enabled: yes please}\n", "'responses.enabled' must be true or false"),
        ("state: {dedup_capacity: -1}\n", "'state.dedup_capacity' must be a non-negative integer"),
        ("catalog: {overrides: one.yaml}\n", "'catalog.overrides' must be a list"),
        ("severity: 3\n", "severity must be a mapping"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", {})


def test_every_severity_key_is_a_policy_field_of_the_same_name() -> None:
    from dataclasses import fields

    from detector.config import SeveritySettings
    from detector.core.policy import SeverityPolicy

    keys = {f.name for f in fields(SeveritySettings)}
    policy = {f.name for f in fields(SeverityPolicy)}
    assert keys - policy == {"tier_0", "tier_1", "tier_2"}
    assert policy - keys == {"tier_severity"}


def test_severity_settings_reach_the_policy() -> None:
    from detector.config import Settings, SeveritySettings
    from detector.core.taxonomy import Severity
    from detector.wiring import severity_policy

    chosen = SeveritySettings(novel_action=Severity.HIGH, recon_denied_calls=9, tier_1=Severity.LOW)
    policy = severity_policy(Settings(severity=chosen))
    assert policy.novel_action is Severity.HIGH and policy.recon_denied_calls == 9
    assert dict(policy.tier_severity) == {0: Severity.HIGH, 1: Severity.LOW, 2: Severity.LOW}
