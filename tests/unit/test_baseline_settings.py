"""`baseline:` in the configuration: defaults, validation naming the key, paths, overrides,
and the keys the models read passed to them as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.baseline.registry import load_models
from detector.baseline.settings import OWN_KEYS, baseline_settings, model_keys, model_settings
from detector.config import load_settings
from detector.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trailguard.yaml"
    path.write_text(text)
    return path


def test_no_section_means_no_baseline_and_the_documented_defaults() -> None:
    settings = baseline_settings(load_settings(None, {}))
    assert settings.path is None and settings.models == ()
    assert settings.drain_every == 10_000 and settings.habit_calls == 5.0


def test_a_full_section_is_read_and_its_path_is_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        _write(
            tmp_path,
            """
baseline:
  path: models/mine
  models: [action-frequency]
  drain_every: 500
  habit_calls: 2.5
  half_life_days: 3.5
  default_time_zone: Europe/London
  time_zones: {"111122223333": Europe/Berlin}
  networks: {office: ["203.0.113.0/24", "2001:db8::/32"]}
""",
        ),
        {},
    )
    parsed = baseline_settings(settings)
    assert parsed.path == tmp_path / "models" / "mine"
    assert parsed.models == ("action-frequency",) and parsed.drain_every == 500
    assert parsed.habit_calls == 2.5
    # The models get the section as written: their keys, and the path resolved.
    section = model_settings(settings)
    assert section["half_life_days"] == 3.5 and section["time_zones"] == {
        "111122223333": "Europe/Berlin"
    }
    override = baseline_settings(settings, path=tmp_path / "other")
    assert override.path == tmp_path / "other" and override.models == ("action-frequency",)


def test_the_models_declare_their_keys() -> None:
    keys = model_keys(load_models())
    assert {"half_life_days", "time_zones", "networks", "default_time_zone"} <= keys
    assert {"session_quantile", "session_min_sessions", "session_milestone_every"} <= keys
    assert not keys & OWN_KEYS


def test_the_environment_sets_the_path() -> None:
    settings = load_settings(None, {"TRAILGUARD__BASELINE__PATH": "/srv/models/default"})
    assert baseline_settings(settings).path == Path("/srv/models/default")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{pth: x}", "unknown key 'baseline.pth' (did you mean 'baseline.path'?)"),
        ("{half_life_day: 3}", "(did you mean 'baseline.half_life_days'?)"),
        ("{habit_calls: 0}", "'baseline.habit_calls' must be a number above 0"),
        ("{drain_every: 0}", "'baseline.drain_every' must be an integer of at least 1"),
        ("{models: [action-frequency, action-frequency]}", "lists 'action-frequency' twice"),
        ("{models: [nope]}", "'baseline.models': unknown model 'nope' (known: action-frequency"),
        ("{half_life_days: 0}", "'baseline.half_life_days' must be a number above 0"),
        ("{default_time_zone: Mars/Olympus}", "'baseline.default_time_zone': unknown time zone"),
        (
            '{time_zones: {"111122223333": Nowhere/City}}',
            "'baseline.time_zones.111122223333': unknown time zone 'Nowhere/City'",
        ),
        (
            "{networks: {office: [10.0.0.0/8, not-a-cidr]}}",
            "'baseline.networks.office[1]' is not a CIDR",
        ),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, section: str, message: str) -> None:
    settings = load_settings(_write(tmp_path, f"baseline: {section}\n"), {})
    with pytest.raises(ConfigError) as raised:
        baseline_settings(settings)
    assert message in str(raised.value)
    assert str(tmp_path / "trailguard.yaml") in str(raised.value)
