"""Real attack and clean-up traces land in the categories their semantics call for."""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import pytest

from detector.catalog_loader import load_catalog
from detector.core.actions import event_actions
from detector.core.events import CloudTrailEvent
from detector.core.parse import parse_record
from detector.core.taxonomy import Category
from tests.conftest import CLOUDTRAIL, read_jsonl

STRATUS_SETS = ("stratus_detonation_logs", "zmallen_stratus_2022")
TACTICS = ("defense-evasion", "persistence", "exfiltration", "credential-access")

# One line per Stratus Red Team technique of the four tactics found in the two sets.
EXPECTED: dict[str, Category] = {
    "aws.defense-evasion.cloudtrail-delete": Category.DEFENSE_EVASION,
    "aws.defense-evasion.cloudtrail-event-selectors": Category.DEFENSE_EVASION,
    "aws.defense-evasion.cloudtrail-stop": Category.DEFENSE_EVASION,
    "aws.defense-evasion.dns-delete-logs": Category.DEFENSE_EVASION,
    "aws.defense-evasion.organizations-leave": Category.DEFENSE_EVASION,
    "aws.defense-evasion.vpc-remove-flow-logs": Category.DEFENSE_EVASION,
    "aws.exfiltration.ec2-security-group-open-port-22-ingress": Category.DATA_EXPOSURE,
    "aws.exfiltration.ec2-share-ami": Category.DATA_EXPOSURE,
    "aws.exfiltration.ec2-share-ebs-snapshot": Category.DATA_EXPOSURE,
    "aws.exfiltration.rds-share-snapshot": Category.DATA_EXPOSURE,
    "aws.persistence.iam-backdoor-role": Category.PERSISTENCE,
    "aws.persistence.iam-backdoor-user": Category.PERSISTENCE,
    "aws.persistence.iam-create-admin-user": Category.PERMISSIONS,  # attaches AdministratorAccess
    "aws.persistence.iam-create-backdoor-role": Category.PERMISSIONS,  # likewise
    "aws.persistence.iam-create-user-login-profile": Category.PERSISTENCE,
    "aws.persistence.lambda-backdoor-function": Category.DATA_EXPOSURE,  # invokable by '*'
    "aws.persistence.lambda-layer-extension": Category.PERSISTENCE,
    "aws.persistence.lambda-overwrite-code": Category.PERSISTENCE,
    "aws.persistence.rolesanywhere-create-trust-anchor": Category.PERSISTENCE,
    "aws.persistence.sts-federation-token": Category.PERSISTENCE,
    "aws.credential-access.ec2-get-password-data": Category.CREDENTIAL_ACCESS,
    # The only call this trace records is ssm:SendCommand with its parameters hidden by
    # CloudTrail, the same call the execution technique ssm-send-command makes; the IMDS read
    # happens on the instance and the stolen credentials are then used for GetCallerIdentity
    # and DescribeInstances. No action here reads a credential, so the catalogue can only see
    # a dangerous (tier 1) command run, never credential access.
    "aws.credential-access.ec2-steal-instance-credentials": Category.WRITE,
    "aws.credential-access.secretsmanager-batch-retrieve-secrets": Category.CREDENTIAL_ACCESS,
    "aws.credential-access.secretsmanager-retrieve-secrets": Category.CREDENTIAL_ACCESS,
    "aws.credential-access.ssm-retrieve-securestring-parameters": Category.CREDENTIAL_ACCESS,
}


@cache
def technique_events() -> dict[str, tuple[CloudTrailEvent, ...]]:
    by_technique: dict[str, list[CloudTrailEvent]] = defaultdict(list)
    for dataset in STRATUS_SETS:
        folder = CLOUDTRAIL / dataset
        events = {r["eventID"]: parse_record(r) for r in read_jsonl(folder / "events.jsonl")}
        for label in read_jsonl(folder / "labels.jsonl"):
            by_technique[label["technique"]].append(events[label["eventID"]])
    return {technique: tuple(events) for technique, events in by_technique.items()}


def test_the_table_lists_exactly_the_techniques_of_the_four_tactics() -> None:
    in_data = {t for t in technique_events() if t.split(".")[1] in TACTICS}
    assert in_data == set(EXPECTED)


@pytest.mark.parametrize(("technique", "expected"), EXPECTED.items())
def test_technique_classifies_into_its_expected_category(
    technique: str, expected: Category
) -> None:
    catalog = load_catalog()
    seen = {
        catalog.classify(event, action).category
        for event in technique_events()[technique]
        for action in event_actions(event)
    }
    assert expected in seen, f"{technique}: got {sorted(seen)}"


def test_instance_credential_theft_is_at_least_a_dangerous_command() -> None:
    # The table's WRITE for ec2-steal-instance-credentials must not hide a demotion.
    catalog = load_catalog()
    tiers = [
        catalog.classify(event, action).tier
        for event in technique_events()["aws.credential-access.ec2-steal-instance-credentials"]
        for action in event_actions(event)
        if action == "ssm:SendCommand"
    ]
    assert tiers
    assert all(tier <= 1 for tier in tiers)


# --- Terraform set-up and tear-down in the Invictus capture ----------------------------------

INVICTUS = CLOUDTRAIL / "invictus_aws_dataset"
TERRAFORM_CLASS = "stratus_terraform_warmup_cleanup"
DELETE_VERBS = ("Delete", "Terminate", "Deregister")
# Rule: a delete destroys, except where what it deletes is an audit or monitoring record; those
# calls erase evidence and are defense evasion.
LOG_DELETIONS = frozenset(
    {
        "logs:DeleteLogGroup",
        "logs:DeleteLogStream",
        "cloudtrail:DeleteTrail",
        "cloudtrail:DeleteEventDataStore",
        "ec2:DeleteFlowLogs",
        "route53resolver:DeleteResolverQueryLogConfig",
    }
)


@cache
def invictus() -> tuple[tuple[dict[str, object], str], ...]:
    events = list(read_jsonl(INVICTUS / "events.jsonl"))
    labels = list(read_jsonl(INVICTUS / "labels.jsonl"))
    assert [e["eventID"] for e in events] == [label["eventID"] for label in labels]
    return tuple((e, str(label["activity_class"])) for e, label in zip(events, labels, strict=True))


def terraform_deletes(*, only_successful: bool) -> list[CloudTrailEvent]:
    found = []
    for record, activity in invictus():
        if activity != TERRAFORM_CLASS or "terraform" not in str(record["userAgent"]).lower():
            continue
        event = parse_record(record)
        if event.event_type != "AwsApiCall" or not event.event_name.startswith(DELETE_VERBS):
            continue
        if only_successful and event.failed:
            continue
        found.append(event)
    return found


def test_the_terraform_label_is_exactly_the_terraform_user_agent() -> None:
    by_label = {str(r["eventID"]) for r, activity in invictus() if activity == TERRAFORM_CLASS}
    by_agent = {
        str(r["eventID"]) for r, _ in invictus() if "terraform" in str(r["userAgent"]).lower()
    }
    assert by_label == by_agent


def test_every_successful_terraform_delete_is_destroy_or_log_deletion() -> None:
    catalog = load_catalog()
    wrong = []
    for event in terraform_deletes(only_successful=True):
        for action in event_actions(event):
            expected = Category.DEFENSE_EVASION if action in LOG_DELETIONS else Category.DESTROY
            got = catalog.classify(event, action).category
            if got is not expected:
                wrong.append(f"{action}: {got.value}, expected {expected.value}")
    assert wrong == []


def test_terraform_tear_down_includes_log_deletions() -> None:
    # Guards the rule above from being vacuous: the tear-down deletes a trail and a log group.
    actions = {a for e in terraform_deletes(only_successful=True) for a in event_actions(e)}
    assert {"cloudtrail:DeleteTrail", "logs:DeleteLogGroup"} <= actions


def test_terraform_delete_counts() -> None:
    # 184 Delete*/Terminate*/Deregister* calls by Terraform, of which 45 failed (38 SSM
    # throttling, BucketNotEmpty, NoSuchEntity, an RDS state fault) and 139 succeeded.
    assert len(terraform_deletes(only_successful=False)) == 184
    assert len(terraform_deletes(only_successful=True)) == 139


def test_what_the_readme_delete_count_counts() -> None:
    # tests/data/cloudtrail/README.md counts 195 Delete*/Terminate* calls in the capture,
    # 183 of them Terraform's: every such record whoever made it and whether or not it
    # failed (45 of Terraform's failed), plus 10 Stratus attack deletes and 2 by AWS services.
    by_class: dict[str, int] = defaultdict(int)
    for record, activity in invictus():
        if str(record["eventName"]).startswith(("Delete", "Terminate")):
            by_class[activity] += 1
    assert sum(by_class.values()) == 195
    assert dict(by_class) == {
        TERRAFORM_CLASS: 183,
        "stratus_detonation": 10,
        "aws_service_or_internal": 2,
    }
