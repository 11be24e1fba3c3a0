"""deploy/iam/trailguard-respond.json is generated from the responders' declared permissions."""

from __future__ import annotations

from pathlib import Path

import orjson

from detector.catalog_loader import load_catalog
from detector.commands.responses import responder_policy
from detector.responders.base import RESPONDERS
from detector.responders.build import required_permissions

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "iam" / "trailguard-respond.json"


def test_the_deployed_policy_equals_the_declared_permissions() -> None:
    deployed = orjson.loads(POLICY.read_bytes())
    # Regenerate with: trailguard responses policy > deploy/iam/trailguard-respond.json
    assert deployed == responder_policy()
    granted = {a for s in deployed["Statement"] for a in s["Action"]}
    assert granted == required_permissions()


def test_every_responder_declares_real_actions() -> None:
    required_permissions()  # loads the built-in responders
    assert set(RESPONDERS) >= {"revoke-session", "disable-access-key", "revoke-role-sessions"}
    catalog = load_catalog()
    for name in RESPONDERS:
        declared = RESPONDERS.get(name).required_permissions
        assert declared, name
        assert [a for a in declared if not catalog.entry(a).known] == [], name


def test_the_example_config_builds_its_responders() -> None:
    from detector.config import load_settings
    from detector.responders.build import build_responders

    settings = load_settings(POLICY.parents[1] / "trailguard.yaml", {})
    assert settings.responses.enabled is False
    names = [r.name for r in build_responders(settings)]
    assert names == ["revoke-session", "disable-access-key"]
