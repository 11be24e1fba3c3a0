"""Arbitrary input never crashes the pipeline, and every rejection says why.

Generated inputs go through each stage a record meets: the readers (bytes in any shape,
plain or gzip), `parse_record`, attribution (`SessionTracker.observe`), scope binding and
evaluation, and the whole pipeline. The only failures allowed are the declared ones:
ParseError for a record, ConfigError for a scope file, each with a non-empty reason.
"""

from __future__ import annotations

import gzip
import string
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from detector.config import load_settings
from detector.core.agents import DEFAULT_MARKERS, AgentMarkerTable
from detector.core.parse import parse_record
from detector.core.scope import GlobSet, parse_scopes
from detector.core.sessions import SessionTracker
from detector.errors import ConfigError, ParseError
from detector.records import BadInput, Record, Rejection, parse_items
from detector.sources.files import decode_records, expand, read_input
from detector.wiring import build_pipeline
from tests.conftest import make_event

DEMO_SCOPES = Path(__file__).resolve().parents[2] / "detector" / "data" / "demo" / "scopes.yaml"

# --- strategies -------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
# Values that look like what the fields hold, so the deep paths are reached too.
field_values = (
    json_values
    | st.sampled_from(
        [
            "2025-12-08T10:00:00Z",
            "not a time",
            "arn:aws:iam::111122223333:role/deploy",
            "arn:aws:sts::111122223333:assumed-role/deploy/agent-kiro-1",
            "ASIAEXAMPLE000000001",
            "AKIAEXAMPLE000000001",
            "AssumedRole",
            "IAMUser",
            "AWSService",
            "Root",
            "cloudformation.amazonaws.com",
            "aws-cli/2.35.30 m/AQ,E md/awslabs#mcp#aws-api",
            "",
        ]
    )
    | st.text(alphabet=string.printable, max_size=40)
)
SOURCES = [
    ("sts.amazonaws.com", "AssumeRole"),
    ("sts.amazonaws.com", "GetSessionToken"),
    ("s3.amazonaws.com", "DeleteBucket"),
    ("iam.amazonaws.com", "PutRolePolicy"),
    ("apigateway.amazonaws.com", "DeleteRestApi"),
    ("ec2.amazonaws.com", "TerminateInstances"),
    ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2"),
    ("signin.amazonaws.com", "ConsoleLogin"),
    ("cloudtrail.amazonaws.com", "StopLogging"),
    ("logs.amazonaws.com", "DeleteLogGroup"),
]
PARAMETER_KEYS = [
    "bucketName",
    "roleArn",
    "roleSessionName",
    "sourceIdentity",
    "tags",
    "restApiId",
    "apiId",
    "stageName",
    "instancesSet",
    "functionName",
    "logGroupName",
    "name",
    "policyDocument",
]
IDENTITY_KEYS = [
    "type",
    "arn",
    "principalId",
    "accountId",
    "accessKeyId",
    "userName",
    "invokedBy",
    "sessionContext",
    "onBehalfOf",
]


@st.composite
def cloudtrail_like(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with some fields replaced by arbitrary values, or dropped."""
    source, name = draw(st.sampled_from(SOURCES))
    record = make_event(
        eventID=draw(st.sampled_from(["e-1", "e-2", "e-3"]) | st.uuids().map(str)),
        eventSource=source,
        eventName=name,
        requestParameters=draw(
            st.dictionaries(st.sampled_from(PARAMETER_KEYS), field_values, max_size=4) | json_values
        ),
        responseElements=draw(
            st.dictionaries(
                st.sampled_from(["credentials", "assumedRoleUser", "id", "apiId"]),
                json_values,
                max_size=2,
            )
            | st.none()
        ),
    )
    identity = record["userIdentity"]
    for key in draw(st.lists(st.sampled_from(IDENTITY_KEYS), max_size=4)):
        if draw(st.booleans()):
            identity[key] = draw(field_values)
        else:
            identity.pop(key, None)
    for key in draw(st.lists(st.sampled_from(sorted(record)), max_size=3)):
        if draw(st.booleans()):
            record[key] = draw(field_values)
        else:
            record.pop(key, None)
    return record


records = cloudtrail_like() | json_values


@st.composite
def input_bytes(draw: st.DrawFn) -> bytes:
    """Records in every shape the readers accept, and broken bytes, plain or gzip."""
    values = draw(st.lists(records, max_size=5))
    shape = draw(st.sampled_from(["lines", "document", "records", "array", "garbage"]))
    if shape == "lines":
        data = b"".join(orjson.dumps(v) + b"\n" for v in values)
    elif shape == "document":
        data = orjson.dumps(values[0] if values else None)
    elif shape == "records":
        data = orjson.dumps({"Records": values})
    elif shape == "array":
        data = orjson.dumps(values, option=orjson.OPT_INDENT_2)
    else:
        data = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        # Cut anywhere: truncated downloads and half-written files.
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    if draw(st.booleans()):
        data = gzip.compress(data)
        if draw(st.booleans()):
            data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return data


def _rejections(items: list[Record | BadInput]) -> tuple[list[Any], list[Rejection]]:
    rejected: list[Rejection] = []
    events = [event for _, event in parse_items(items, rejected.append)]
    return events, rejected


# --- properties -------------------------------------------------------------------------------


@given(records)
def test_parse_record_gives_an_event_or_a_parse_error_with_a_reason(value: Any) -> None:
    try:
        event = parse_record(value)
    except ParseError as exc:
        assert exc.reason.strip()
    else:
        assert event.event_id and event.event_source and event.event_name


@given(input_bytes())
def test_files_in_any_shape_are_read_without_crashing(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(data)
        files, skipped = expand([folder])
        items = [item for f in files for item in read_input(f)]
    assert len(files) + len(skipped) == 1
    _, rejected = _rejections(items)
    assert all(r.reason.strip() and r.origin for r in rejected)


@given(st.binary(max_size=400) | input_bytes())
def test_messages_in_memory_decode_without_crashing(data: bytes) -> None:
    _, rejected = _rejections(list(decode_records("topic:0:7", data)))
    assert all(r.reason.strip() for r in rejected)


@given(st.lists(cloudtrail_like(), min_size=1, max_size=8))
def test_attribution_of_any_parsed_events_never_crashes(values: list[dict[str, Any]]) -> None:
    tracker = SessionTracker(AgentMarkerTable(DEFAULT_MARKERS), max_sessions=4)
    for value in values:
        try:
            event = parse_record(value)
        except ParseError:
            continue
        view = tracker.observe(event)
        assert view.session_id


glob = st.text(alphabet="ab*?:/-" + string.ascii_lowercase[:4], min_size=0, max_size=12)
action_globs = st.sampled_from(
    ["s3:*", "*:Delete*", "iam:PutRolePolicy", "sts:Assume*", "lambda:Update*", "*", "ce:Get*"]
)
match_globs = st.sampled_from(
    ["*", "arn:aws:*", "agent-*", "kiro", "dana", "*deploy*"]
) | glob.filter(bool)
valid_scopes = st.fixed_dictionaries(
    {
        "name": st.text(alphabet=string.ascii_lowercase + "-", min_size=1, max_size=8),
        "match": st.dictionaries(
            st.sampled_from(["role_arn", "session_name", "principal_arn", "agent"]),
            match_globs,
            min_size=1,
            max_size=2,
        ),
        "allow": st.fixed_dictionaries(
            {"actions": st.lists(action_globs, min_size=1, max_size=3)},
            optional={
                "resources": st.lists(
                    st.sampled_from(["arn:aws:s3:::*", "*", "arn:*"]), min_size=1, max_size=2
                ),
                "regions": st.lists(st.sampled_from(["us-east-1", "eu-*"]), min_size=1),
            },
        ),
    },
    optional={
        "deny": st.fixed_dictionaries({"actions": st.lists(action_globs, max_size=2)}),
        "on_violation": st.sampled_from(["alert", "revoke"]),
        "expires": st.sampled_from(["2025-12-08T10:00:00Z", "2030-01-01T00:00:00Z"]),
    },
)
# Mostly valid scopes (so binding and evaluation run), some with any field broken.
any_scopes = valid_scopes | st.builds(
    lambda scope, key, value: {**scope, key: value},
    valid_scopes,
    st.sampled_from(["name", "match", "allow", "deny", "expires", "on_violation"]),
    json_values,
)
scope_documents = st.fixed_dictionaries({"scopes": st.lists(any_scopes, max_size=3)})


@given(scope_documents, st.lists(cloudtrail_like(), min_size=1, max_size=4))
def test_scope_files_and_matching_never_crash(
    document: dict[str, Any], values: list[dict[str, Any]]
) -> None:
    try:
        scopes = parse_scopes(document, source="generated.yaml")
    except ConfigError as exc:
        assert str(exc).strip()
        return
    tracker = SessionTracker(AgentMarkerTable(DEFAULT_MARKERS))
    for value in values:
        try:
            event = parse_record(value)
        except ParseError:
            continue
        scope = scopes.bind(tracker.observe(event))
        if scope is not None:
            verdict = scope.evaluate(
                actions=[f"{event.event_source.split('.')[0]}:{event.event_name}"],
                resources=[r.arn for r in event.resources],
                region=event.aws_region,
                account=event.account_id,
                at=datetime(2026, 1, 1, tzinfo=UTC),
            )
            assert all(v.reason.strip() for v in verdict.violations)


@given(st.text(alphabet="ab*?", max_size=6), st.text(alphabet="ab", max_size=6))
def test_a_glob_without_wildcards_matches_only_itself(pattern: str, value: str) -> None:
    literal = pattern.replace("*", "").replace("?", "")
    globs = GlobSet.compile([literal])
    assert (globs.first(value) is not None) == (value == literal)


PIPELINE = build_pipeline(load_settings(None, {}), scopes_path=DEMO_SCOPES)


@given(st.lists(records, min_size=1, max_size=10))
def test_the_pipeline_takes_any_stream_of_records(values: list[Any]) -> None:
    items: list[Record | BadInput] = [Record(f"gen:{i}", v) for i, v in enumerate(values)]
    events, rejected = _rejections(items)
    for event in events:
        result = PIPELINE.process(event)
        assert all(f.reason.strip() for f in result.findings)
    assert all(r.reason.strip() for r in rejected)
    assert len(events) + len(rejected) == len(values)
