"""Decoded JSON → CloudTrailEvent, and the envelopes CloudTrail records arrive in.

Every way a record can be malformed ends in a ParseError that says which field is wrong;
the caller adds where the record came from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from detector.core.events import EMPTY, Actor, CloudTrailEvent, ResourceRef
from detector.errors import ParseError

# EventBridge detail-types whose `detail` is a CloudTrail record.
CLOUDTRAIL_DETAIL_TYPES = frozenset(
    {
        "AWS API Call via CloudTrail",
        "AWS Console Signin via CloudTrail",
        "AWS Console Action via CloudTrail",
        "AWS Service Event via CloudTrail",
    }
)


def unwrap(document: Any) -> Iterator[tuple[str, Any]]:
    """Yield (position, record) for each CloudTrail record a decoded document holds.

    Accepts an S3 log file `{"Records": [...]}`, a JSON array of records or of EventBridge
    envelopes, one EventBridge envelope, or one bare record. The position is "" for a lone
    record and "[i]" or "Records[i]" inside a batch, so errors can point at the element.
    """
    if isinstance(document, list):
        for index, item in enumerate(document):
            for position, record in unwrap_one(item):
                yield f"[{index}]{position}", record
        return
    if isinstance(document, dict) and "Records" in document:
        records = document["Records"]
        if not isinstance(records, list):
            raise ParseError("'Records' is not a list")
        for index, item in enumerate(records):
            yield f"Records[{index}]", item
        return
    yield from unwrap_one(document)


def unwrap_one(item: Any) -> Iterator[tuple[str, Any]]:
    """A single element: an EventBridge envelope is opened, anything else passes through."""
    if isinstance(item, dict) and "detail-type" in item and "detail" in item:
        if item["detail-type"] not in CLOUDTRAIL_DETAIL_TYPES:
            raise ParseError(
                f"EventBridge event of detail-type {item['detail-type']!r} is not CloudTrail"
            )
        yield ".detail", item["detail"]
        return
    yield "", item


# Optional string fields, read in one pass. A value of another type sends the record down the
# careful path, which converts numbers and names the offending field.
_EVENT_STRINGS = (
    "eventType",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "recipientAccountId",
    "sharedEventID",
)
_STR_OR_NONE = frozenset({str, type(None)})
_ACTOR_STRINGS = (
    "type",
    "arn",
    "principalId",
    "accountId",
    "accessKeyId",
    "userName",
    "invokedBy",
    "identityProvider",
)


def parse_record(record: Any) -> CloudTrailEvent:
    """Build a CloudTrailEvent from one decoded record, or raise ParseError naming the field."""
    if not isinstance(record, dict):
        raise ParseError(f"record is a JSON {type(record).__name__}, not an object")
    version = record.get("eventVersion")
    if version is not None and not str(version).startswith("1."):
        raise ParseError(f"eventVersion {version!r} is not a 1.x CloudTrail record")
    identity = record.get("userIdentity")
    if identity is None:
        # Every CloudTrail API call, sign-in and service event names who acted; without it
        # the event cannot be attributed to a session and a finding would name no principal.
        if record.get("eventType") == "AwsCloudTrailInsight":
            raise ParseError("a CloudTrail Insights event has no userIdentity: not an API call")
        raise ParseError("missing required field 'userIdentity'")
    if not isinstance(identity, dict):
        raise ParseError("userIdentity is not an object")
    if not identity:
        raise ParseError("userIdentity is empty: it names no caller")
    get = record.get
    event_id, event_time, event_source, event_name = (
        get("eventID"),
        get("eventTime"),
        get("eventSource"),
        get("eventName"),
    )
    strings = [get(key) for key in _EVENT_STRINGS]
    # The common case: every field already has its type; one check each, no calls.
    if not (
        event_id.__class__ is str
        and event_id
        and event_time.__class__ is str
        and event_source.__class__ is str
        and event_source
        and event_name.__class__ is str
        and event_name
        and _STR_OR_NONE.issuperset(map(type, strings))
    ):
        return _parse_carefully(record, identity)
    event_type, region, source_ip, user_agent, error_code, error_message, recipient, shared = (
        strings
    )
    try:
        return CloudTrailEvent(
            event_id=event_id,
            event_time=parse_time(event_time),
            event_source=event_source,
            event_name=event_name,
            event_type=event_type or "AwsApiCall",
            aws_region=region or "",
            source_ip=source_ip,
            user_agent=user_agent or "",
            error_code=error_code,
            error_message=error_message,
            read_only=_optional_bool(get("readOnly")),
            recipient_account_id=recipient,
            shared_event_id=shared,
            console_session=_optional_bool(get("sessionCredentialFromConsole")) is True,
            actor=_actor(identity),
            resources=_resources(get("resources")),
            request_parameters=_mapping(record, "requestParameters"),
            response_elements=_mapping(record, "responseElements"),
            additional_event_data=_mapping(record, "additionalEventData"),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ParseError(str(exc)) from exc


def _parse_carefully(record: dict[str, Any], identity: dict[str, Any]) -> CloudTrailEvent:
    """Field by field, converting what can be converted and naming what cannot."""
    try:
        return CloudTrailEvent(
            event_id=_required_str(record, "eventID"),
            event_time=parse_time(_required_str(record, "eventTime")),
            event_source=_required_str(record, "eventSource"),
            event_name=_required_str(record, "eventName"),
            event_type=_optional_str(record, "eventType") or "AwsApiCall",
            aws_region=_optional_str(record, "awsRegion") or "",
            source_ip=_optional_str(record, "sourceIPAddress"),
            user_agent=_optional_str(record, "userAgent") or "",
            error_code=_optional_str(record, "errorCode"),
            error_message=_optional_str(record, "errorMessage"),
            read_only=_optional_bool(record.get("readOnly")),
            recipient_account_id=_optional_str(record, "recipientAccountId"),
            shared_event_id=_optional_str(record, "sharedEventID"),
            console_session=_optional_bool(record.get("sessionCredentialFromConsole")) is True,
            actor=_actor(identity),
            resources=_resources(record.get("resources")),
            request_parameters=_mapping(record, "requestParameters"),
            response_elements=_mapping(record, "responseElements"),
            additional_event_data=_mapping(record, "additionalEventData"),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ParseError(str(exc)) from exc


@lru_cache(maxsize=4096)
def parse_time(value: str) -> datetime:
    """CloudTrail times are ISO 8601 in UTC ("2023-07-10T11:42:18Z"). Cached: the events of
    one second share the text, and then one datetime object instead of one each (sessions
    and sequence steps keep them)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(f"eventTime {value!r} is not an ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _actor(identity: Mapping[str, Any]) -> Actor:
    context = identity.get("sessionContext") or {}
    attributes = context.get("attributes") or {}
    issuer = context.get("sessionIssuer") or {}
    on_behalf = identity.get("onBehalfOf") or {}
    in_scope_of = identity.get("inScopeOf") or {}
    get = identity.get
    strings = [get(key) for key in _ACTOR_STRINGS]
    nested = (
        issuer.get("arn"),
        issuer.get("type"),
        attributes.get("creationDate"),
        context.get("sourceIdentity"),
        on_behalf.get("userId"),
        in_scope_of.get("credentialsIssuedTo"),
    )
    if not (
        _STR_OR_NONE.issuperset(map(type, strings)) and _STR_OR_NONE.issuperset(map(type, nested))
    ):
        return _actor_carefully(identity, context, attributes, issuer, on_behalf, in_scope_of)
    kind, arn, principal_id, account_id, access_key_id, user_name, invoked_by, provider = strings
    issuer_arn, issuer_type, created_at, source_identity, behalf_of, issued_to = nested
    return Actor(
        type=kind or "Unknown",
        arn=arn,
        principal_id=principal_id,
        account_id=account_id,
        access_key_id=access_key_id or None,
        user_name=user_name,
        session_issuer_arn=issuer_arn,
        session_issuer_type=issuer_type,
        session_created_at=created_at,
        mfa_authenticated=_optional_bool(attributes.get("mfaAuthenticated")) is True,
        source_identity=source_identity,
        invoked_by=invoked_by,
        on_behalf_of=behalf_of,
        identity_provider=provider,
        credentials_issued_to=issued_to,
    )


def _actor_carefully(
    identity: Mapping[str, Any],
    context: Mapping[str, Any],
    attributes: Mapping[str, Any],
    issuer: Mapping[str, Any],
    on_behalf: Mapping[str, Any],
    in_scope_of: Mapping[str, Any],
) -> Actor:
    return Actor(
        type=_optional_str(identity, "type") or "Unknown",
        arn=_optional_str(identity, "arn"),
        principal_id=_optional_str(identity, "principalId"),
        account_id=_optional_str(identity, "accountId"),
        access_key_id=_optional_str(identity, "accessKeyId") or None,
        user_name=_optional_str(identity, "userName"),
        session_issuer_arn=_optional_str(issuer, "arn"),
        session_issuer_type=_optional_str(issuer, "type"),
        session_created_at=_optional_str(attributes, "creationDate"),
        mfa_authenticated=_optional_bool(attributes.get("mfaAuthenticated")) is True,
        source_identity=_optional_str(context, "sourceIdentity"),
        invoked_by=_optional_str(identity, "invokedBy"),
        on_behalf_of=_optional_str(on_behalf, "userId"),
        identity_provider=_optional_str(identity, "identityProvider"),
        credentials_issued_to=_optional_str(in_scope_of, "credentialsIssuedTo"),
    )


def _resources(value: Any) -> tuple[ResourceRef, ...]:
    if not value:
        return ()
    if not isinstance(value, list):
        raise ParseError("resources is not a list")
    refs = []
    for item in value:
        if isinstance(item, dict):
            arn = item.get("ARN") or item.get("arn")
            if isinstance(arn, str) and arn:
                kind = item.get("type")
                refs.append(ResourceRef(arn=arn, type=kind if isinstance(kind, str) else None))
    return tuple(refs)


def _mapping(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = record.get(key)
    if value is None:
        return EMPTY
    if not isinstance(value, dict):
        # Some services log a bare string here (e.g. "HIDDEN_DUE_TO_SECURITY_REASONS").
        return MappingProxyType({"_value": value})
    return MappingProxyType(value)


def _required_str(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        if value is None:
            raise ParseError(f"missing required field {key!r}")
        raise ParseError(f"field {key!r} must be a non-empty string, got {value!r}")
    return value


def _optional_str(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    raise ParseError(f"field {key!r} must be a string, got a JSON {type(value).__name__}")


def _optional_bool(value: Any) -> bool | None:
    """CloudTrail writes booleans both as JSON booleans and as "true"/"false" strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    raise ParseError(f"expected a boolean, got {value!r}")
