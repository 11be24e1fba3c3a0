"""`baseline:` in the configuration: defaults, validation naming the key, paths, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.baseline.settings import baseline_settings, runtime_settings
from detector.config import load_settings
from detector.errors import ConfigError


def test_no_section_means_no_baseline_and_the_documented_defaults(tmp_path: Path) -> None:
    settings = baseline_settings(load_settings(None, {}))
    assert settings.path is None and settings.models == () and settings.learn is True
    assert settings.half_life_days == 14.0 and settings.drain_every == 10_000
    assert runtime_settings(settings) == {
        "learn": True,
        "half_life_days": 14.0,
        "default_time_zone": "UTC",
        "time_zones": {},
        "networks": {},
    }


def test_a_full_section_is_read_and_its_path_is_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        _write(
            tmp_path,
            """
baseline:
  path: models/mine
  models: [action-frequency]
  learn: false
  half_life_days: 3.5
  default_time_zone: Europe/London
  time_zones: {"111122223333": Europe/Berlin}
  networks: {office: ["203.0.113.0/24", "2001:db8::/32"]}
  drain_every: 500
""",
        ),
        {},
    )
    parsed = baseline_settings(settings)
    assert parsed.path == tmp_path / "models" / "mine"
    assert parsed.models == ("action-frequency",) and parsed.drain_every == 500
    assert runtime_settings(parsed) == {
        "learn": False,
        "half_life_days": 3.5,
        "default_time_zone": "Europe/London",
        "time_zones": {"111122223333": "Europe/Berlin"},
        "networks": {"office": ["203.0.113.0/24", "2001:db8::/32"]},
    }
    override = baseline_settings(settings, path=tmp_path / "other")
    assert override.path == tmp_path / "other" and override.models == ("action-frequency",)


def test_the_environment_sets_the_path(tmp_path: Path) -> None:
    settings = load_settings(None, {"TRAILGUARD__BASELINE__PATH": "/srv/models/default"})
    assert baseline_settings(settings).path == Path("/srv/models/default")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{pth: x}", "unknown key 'baseline.pth' (did you mean 'baseline.path'?)"),
        ("{half_life_days: 0}", "'baseline.half_life_days' must be a number above 0"),
        ("{drain_every: 0}", "'baseline.drain_every' must be an integer of at least 1"),
        ("{models: [a, a]}", "'baseline.models' lists 'a' twice"),
        ("{learn: yes please}", "'baseline.learn' must be true or false"),
        ("{default_time_zone: Mars/Olympus}", "'baseline.default_time_zone': unknown time zone"),
        (
            '{time_zones: {"111122223333": Nowhere/City}}',
            "'baseline.time_zones.111122223333': unknown time zone 'Nowhere/City'",
        ),
        ("{time_zones: {prod: UTC}}", "'baseline.time_zones.prod': an account id is 12 digits"),
        ("{networks: {office: 10.0.0.0/8}}", "'baseline.networks.office' must be a non-empty"),
        (
            "{networks: {office: [10.0.0.0/8, not-a-cidr]}}",
            "'baseline.networks.office[1]' must be a CIDR (203.0.113.0/24), got 'not-a-cidr'",
        ),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, section: str, message: str) -> None:
    settings = load_settings(_write(tmp_path, f"baseline: {section}\n"), {})
    with pytest.raises(ConfigError) as raised:
        baseline_settings(settings)
    assert message in str(raised.value)
    assert str(tmp_path / "trailguard.yaml") in str(raised.value)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trailguard.yaml"
    path.write_text(text)
    return path
