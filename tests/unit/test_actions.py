"""CloudTrail (eventSource, eventName) → IAM actions: prefixes, renames, versions, sign-ins."""

from __future__ import annotations

import pytest

from detector.catalog_loader import access_levels, load_catalog
from detector.core.actions import (
    NON_IAM_EVENT_TYPES,
    NON_IAM_EVENTS,
    RENAMES,
    SOURCE_PREFIXES,
    action_verb,
    event_actions,
    resolve_actions,
    service_prefix,
    strip_version,
)
from detector.core.parse import parse_record
from tests.conftest import CLOUDTRAIL, DATASETS, make_event, read_jsonl


def _event(source: str, name: str, event_type: str = "AwsApiCall") -> tuple[str, ...]:
    return event_actions(
        parse_record(make_event(eventSource=source, eventName=name, eventType=event_type))
    )


# --- renames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"), list(RENAMES.items()), ids=[f"{s}:{n}" for s, n in RENAMES]
)
def test_every_rename_resolves_as_declared(key: tuple[str, str], expected: tuple[str, ...]) -> None:
    service, name = key
    source = f"{service}.amazonaws.com"
    assert service_prefix(source) == service
    assert resolve_actions(source, name) == expected


@pytest.mark.parametrize(
    ("key", "expected"), list(RENAMES.items()), ids=[f"{s}:{n}" for s, n in RENAMES]
)
def test_every_rename_target_is_an_iam_action_in_its_published_casing(
    key: tuple[str, str], expected: tuple[str, ...]
) -> None:
    for action in expected:
        service, name = action.split(":")
        info = access_levels(service).get(name.lower())
        assert info is not None, f"{action} is not in the IAM reference"
        assert info.name == name


def test_a_rename_never_hides_an_iam_action_of_the_same_name() -> None:
    # If the operation name were itself an IAM action, renaming it would check the wrong
    # permission; only a difference in casing (PutBucketCors / PutBucketCORS) is allowed.
    hidden = [
        f"{service}:{name} -> {', '.join(targets)}"
        for (service, name), targets in RENAMES.items()
        if name.lower() in access_levels(service)
        and [t.lower() for t in targets] != [f"{service}:{name}".lower()]
    ]
    assert hidden == []


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        ("s3.amazonaws.com", "ListBuckets", ("s3:ListAllMyBuckets",)),
        ("s3.amazonaws.com", "DeleteObjects", ("s3:DeleteObject",)),
        ("s3.amazonaws.com", "CopyObject", ("s3:GetObject", "s3:PutObject")),
        ("s3.amazonaws.com", "DeleteBucketLifecycle", ("s3:PutLifecycleConfiguration",)),
        ("kms.amazonaws.com", "ReEncrypt", ("kms:ReEncryptFrom", "kms:ReEncryptTo")),
        ("lambda.amazonaws.com", "Invoke", ("lambda:InvokeFunction",)),
        # Converse is logged by the runtime endpoint, whose host is not the IAM prefix.
        ("bedrock-runtime.amazonaws.com", "Converse", ("bedrock:InvokeModel",)),
    ],
)
def test_renamed_operations(source: str, name: str, expected: tuple[str, ...]) -> None:
    assert resolve_actions(source, name) == expected


def test_an_operation_without_a_rename_is_its_own_action() -> None:
    assert resolve_actions("s3.amazonaws.com", "PutObject") == ("s3:PutObject",)
    assert resolve_actions("iam.amazonaws.com", "CreateRole") == ("iam:CreateRole",)


# --- version suffixes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("UpdateFunctionCode20150331v2", "lambda:UpdateFunctionCode"),
        ("AddPermission20150331v2", "lambda:AddPermission"),
        ("UpdateFunctionConfiguration20150331v2", "lambda:UpdateFunctionConfiguration"),
        ("CreateFunction20150331", "lambda:CreateFunction"),
        ("DeleteFunction20150331", "lambda:DeleteFunction"),
        ("GetFunction", "lambda:GetFunction"),
    ],
)
def test_lambda_version_suffixes_are_stripped(name: str, expected: str) -> None:
    assert resolve_actions("lambda.amazonaws.com", name) == (expected,)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("UpdateDistribution2020_05_31", "cloudfront:UpdateDistribution"),
        ("CreateInvalidation2020_05_31", "cloudfront:CreateInvalidation"),
        ("GetDistribution2019_03_26", "cloudfront:GetDistribution"),
        ("CreateFunction", "cloudfront:CreateFunction"),
    ],
)
def test_cloudfront_version_suffixes_are_stripped(name: str, expected: str) -> None:
    assert resolve_actions("cloudfront.amazonaws.com", name) == (expected,)


def test_version_suffixes_are_only_stripped_for_services_that_add_them() -> None:
    assert strip_version("s3", "GetObject20150331") == "GetObject20150331"
    assert strip_version("lambda", "GetObject20150331") == "GetObject"


def test_a_name_that_is_all_version_is_kept() -> None:
    assert strip_version("lambda", "20150331") == "20150331"


def test_a_renamed_operation_is_found_after_its_version_is_stripped() -> None:
    assert resolve_actions("lambda.amazonaws.com", "Invoke20150331") == ("lambda:InvokeFunction",)


# --- non-IAM events --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NON_IAM_EVENTS))
def test_non_iam_events_resolve_to_nothing(name: str) -> None:
    assert resolve_actions("signin.amazonaws.com", name) == ()


@pytest.mark.parametrize("event_type", sorted(NON_IAM_EVENT_TYPES))
def test_events_that_are_not_authorised_calls_have_no_actions(event_type: str) -> None:
    # A service event reusing an ordinary operation name is still not the caller's call.
    assert _event("ec2.amazonaws.com", "CreateSnapshot", event_type) == ()
    assert _event("ec2.amazonaws.com", "CreateSnapshot") == ("ec2:CreateSnapshot",)


def test_console_login_event_has_no_actions() -> None:
    assert _event("signin.amazonaws.com", "ConsoleLogin", "AwsConsoleSignIn") == ()


# --- service prefixes ------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "prefix"), list(SOURCE_PREFIXES.items()))
def test_every_declared_host_maps_to_an_iam_service(host: str, prefix: str) -> None:
    assert service_prefix(f"{host}.amazonaws.com") == prefix
    assert access_levels(prefix), f"{prefix} is not a service in the IAM reference"


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        ("monitoring.amazonaws.com", "PutMetricAlarm", "cloudwatch:PutMetricAlarm"),
        ("email.amazonaws.com", "SendEmail", "ses:SendEmail"),
        ("tagging.amazonaws.com", "GetResources", "tag:GetResources"),
        ("streams.dynamodb.amazonaws.com", "GetRecords", "dynamodb:GetRecords"),
        ("runtime.sagemaker.amazonaws.com", "InvokeEndpoint", "sagemaker:InvokeEndpoint"),
        ("api.ecr.amazonaws.com", "PutImage", "ecr:PutImage"),
        (
            "servicecatalog-appregistry.amazonaws.com",
            "ListApplications",
            "servicecatalog:ListApplications",
        ),
    ],
)
def test_hosts_that_differ_from_the_iam_prefix(source: str, name: str, expected: str) -> None:
    assert resolve_actions(source, name) == (expected,)


@pytest.mark.parametrize(
    ("source", "prefix"),
    [
        ("ec2.amazonaws.com", "ec2"),
        ("EC2.AmazonAWS.com ", "ec2"),  # case and stray whitespace from hand-made records
        ("s3.api.aws", "s3"),  # dual-stack endpoint
        ("ec2.amazonaws.com.cn", "ec2"),  # China regions
        ("monitoring.amazonaws.com.cn", "cloudwatch"),
    ],
)
def test_service_prefix_strips_every_endpoint_suffix(source: str, prefix: str) -> None:
    assert service_prefix(source) == prefix


# --- API Gateway -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GetRestApis", "apigateway:GET"),
        ("CreateRestApi", "apigateway:POST"),
        ("ImportRestApi", "apigateway:POST"),
        ("FlushStageCache", "apigateway:POST"),
        ("UpdateStage", "apigateway:PATCH"),
        ("PutIntegration", "apigateway:PUT"),
        ("TagResource", "apigateway:PUT"),
        ("DeleteRestApi", "apigateway:DELETE"),
        ("UntagResource", "apigateway:DELETE"),
        # Operations with an IAM action of their own keep their name.
        ("UpdateRestApiPolicy", "apigateway:UpdateRestApiPolicy"),
        ("SetWebACL", "apigateway:SetWebACL"),
        ("CreatePortal", "apigateway:CreatePortal"),
    ],
)
def test_api_gateway_is_authorised_by_http_method(name: str, expected: str) -> None:
    (action,) = resolve_actions("apigateway.amazonaws.com", name)
    assert action == expected
    assert load_catalog().entry(action).known


def test_api_gateway_delete_is_destructive_in_the_catalogue() -> None:
    (action,) = resolve_actions("apigateway.amazonaws.com", "DeleteRestApi")
    assert load_catalog().entry(action).category.value == "destroy"


# --- action_verb -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "verb"),
    [
        ("s3:DeleteBucket", "Delete"),
        ("ec2:DescribeInstances", "Describe"),
        ("rds:CreateDBInstance", "Create"),
        ("iam:GetOpenIDConnectProvider", "Get"),
        ("s3:ListAllMyBuckets", "List"),
        ("iam:UntagRole", "Untag"),
        ("dynamodb:BatchWriteItem", "Write"),  # a batch is judged by what it does
        ("secretsmanager:BatchGetSecretValue", "Get"),
        ("Batch", "Batch"),  # a bare "Batch" has nothing after it to strip to
        ("apigateway:DELETE", "DELETE"),
        ("DeleteBucket", "Delete"),  # no service prefix
    ],
)
def test_action_verb(action: str, verb: str) -> None:
    assert action_verb(action) == verb


# --- real data -------------------------------------------------------------------------------

# Operations seen in the datasets whose IAM action the service authorisation reference does not
# list. Empty: every operation in the four datasets resolves to a published action. Add an
# entry only when AWS documents no IAM action for the operation, with a comment saying so.
REFERENCE_GAPS: frozenset[str] = frozenset()


def test_every_real_api_call_resolves_to_an_action_the_catalogue_knows() -> None:
    catalog = load_catalog()
    unknown: dict[str, str] = {}
    checked = renamed = versioned = 0
    for dataset in DATASETS:
        for record in read_jsonl(CLOUDTRAIL / dataset / "events.jsonl"):
            event = parse_record(record)
            if event.event_type != "AwsApiCall":
                continue
            prefix = service_prefix(event.event_source)
            name = strip_version(prefix, event.event_name)
            renamed += (prefix, name) in RENAMES
            versioned += name != event.event_name
            for action in event_actions(event):
                if not access_levels(action.split(":")[0]):
                    continue
                checked += 1
                if not catalog.entry(action).known and action not in REFERENCE_GAPS:
                    unknown.setdefault(action, f"{dataset}: {event.event_name}")
    assert unknown == {}
    # The check means something only if the data exercised renames and version suffixes.
    assert checked > 1000
    assert renamed > 0
    assert versioned > 0


def test_reference_gaps_are_still_gaps() -> None:
    catalog = load_catalog()
    assert [a for a in sorted(REFERENCE_GAPS) if catalog.entry(a).known] == []
