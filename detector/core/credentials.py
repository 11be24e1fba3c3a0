"""Credential links: what a successful STS call says about the credentials it minted.

After AssumeRole the new session's events name only the role session, never the caller
(identity notes §1.3). The STS event is the one place where both meet: it is signed with the
caller's key and its response carries the new access key id. A `CredentialLink` keeps that
join, so a later event signed with the new key can be walked back to whoever minted it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from detector.core.events import CloudTrailEvent
from detector.core.session_view import NO_TAGS

STS_SOURCE = "sts.amazonaws.com"

# The STS calls that return a new credential set in responseElements.credentials.
MINTING_EVENTS = frozenset(
    {
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "GetFederationToken",
        "GetSessionToken",
        "AssumeRoot",
    }
)

# Session tags are capped at 50 by STS; anything beyond is malformed input, not a session.
_MAX_TAGS = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialLink:
    """The credentials one STS call minted, and the session that called it.

    access_key_id     the minted key (responseElements.credentials.accessKeyId)
    parent_session_id the session that signed the STS call
    parent_type       that caller's userIdentity.type ("AWSAccount" for the copy of a
                      cross-account call logged in the role's account)
    parent_arn        the caller's ARN, kept for when the parent session is evicted
    minted_by         the STS event name
    minted_at         its event time
    principal_id      the new principal (assumedRoleUser.assumedRoleId or federatedUserId)
    arn               the new principal's ARN
    role_arn          requestParameters.roleArn
    session_name      requestParameters.roleSessionName (or the federated user's name)
    source_identity   from responseElements, else requestParameters
    tags              requestParameters.tags [{key, value}] plus principalTags
    transitive_keys   requestParameters.transitiveTagKeys
    incoming_transitive  requestParameters.incomingTransitiveTags (logged on role chaining)
    """

    access_key_id: str
    parent_session_id: str
    parent_type: str
    parent_arn: str | None = None
    minted_by: str
    minted_at: datetime
    principal_id: str | None = None
    arn: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    source_identity: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: NO_TAGS, compare=False)
    transitive_keys: frozenset[str] = frozenset()
    incoming_transitive: Mapping[str, str] = field(default_factory=lambda: NO_TAGS, compare=False)

    def fits(self, principal_id: str | None) -> bool:
        """Whether an event's principal can be the one these credentials were minted for."""
        return (
            self.principal_id is None or principal_id is None or principal_id == self.principal_id
        )

    def better_than(self, other: CredentialLink) -> bool:
        """Prefer the copy signed by a real caller over the role account's AWSAccount copy."""
        return other.parent_type == "AWSAccount" and self.parent_type != "AWSAccount"

    def to_json(self) -> dict[str, Any]:
        return {
            "access_key_id": self.access_key_id,
            "parent_session_id": self.parent_session_id,
            "parent_type": self.parent_type,
            "parent_arn": self.parent_arn,
            "minted_by": self.minted_by,
            "minted_at": self.minted_at.isoformat(),
            "principal_id": self.principal_id,
            "arn": self.arn,
            "role_arn": self.role_arn,
            "session_name": self.session_name,
            "source_identity": self.source_identity,
            "tags": dict(self.tags),
            "transitive_keys": sorted(self.transitive_keys),
            "incoming_transitive": dict(self.incoming_transitive),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CredentialLink:
        return cls(
            access_key_id=data["access_key_id"],
            parent_session_id=data["parent_session_id"],
            parent_type=data["parent_type"],
            parent_arn=data.get("parent_arn"),
            minted_by=data["minted_by"],
            minted_at=datetime.fromisoformat(data["minted_at"]),
            principal_id=data.get("principal_id"),
            arn=data.get("arn"),
            role_arn=data.get("role_arn"),
            session_name=data.get("session_name"),
            source_identity=data.get("source_identity"),
            tags=_frozen(data.get("tags") or {}),
            transitive_keys=frozenset(data.get("transitive_keys") or ()),
            incoming_transitive=_frozen(data.get("incoming_transitive") or {}),
        )


def is_minting(event: CloudTrailEvent) -> bool:
    """A successful STS call that returned credentials."""
    return (
        event.event_source == STS_SOURCE
        and event.event_name in MINTING_EVENTS
        and event.error_code is None
    )


def link_from_event(event: CloudTrailEvent, parent_session_id: str) -> CredentialLink | None:
    """The link a minting STS event establishes, or None when its response names no key."""
    response = event.response_elements
    request = event.request_parameters
    credentials = response.get("credentials")
    access_key = _text(credentials, "accessKeyId")
    if access_key is None:
        return None
    assumed = response.get("assumedRoleUser")
    federated = response.get("federatedUser")
    principal_id = _text(assumed, "assumedRoleId") or _text(federated, "federatedUserId")
    arn = _text(assumed, "arn") or _text(federated, "arn")
    session_name = _text(request, "roleSessionName") or _text(request, "name")
    if event.event_name == "GetSessionToken":
        # The new credentials act as the same IAM user who asked for them.
        principal_id = event.actor.principal_id
        arn = event.actor.arn
    tags = _tag_list(request.get("tags"))
    tags.update(_tag_map(request.get("principalTags")))
    return CredentialLink(
        access_key_id=access_key,
        parent_session_id=parent_session_id,
        parent_type=event.actor.type,
        parent_arn=event.actor.arn,
        minted_by=event.event_name,
        minted_at=event.event_time,
        principal_id=principal_id,
        arn=arn,
        role_arn=_text(request, "roleArn"),
        session_name=session_name,
        source_identity=_text(response, "sourceIdentity") or _text(request, "sourceIdentity"),
        tags=_frozen(tags),
        transitive_keys=frozenset(_strings(request.get("transitiveTagKeys"))),
        incoming_transitive=_frozen(_tag_map(request.get("incomingTransitiveTags"))),
    )


def _text(container: Any, key: str) -> str | None:
    if not isinstance(container, Mapping):
        return None
    value = container.get(key)
    return value if isinstance(value, str) and value else None


def _tag_list(value: Any) -> dict[str, str]:
    """`tags: [{"key": k, "value": v}, ...]` (AssumeRole, GetFederationToken)."""
    tags: dict[str, str] = {}
    if isinstance(value, list):
        for item in value[:_MAX_TAGS]:
            if isinstance(item, Mapping):
                key = item.get("key", item.get("Key"))
                val = item.get("value", item.get("Value"))
                if isinstance(key, str) and isinstance(val, str | int | float):
                    tags[key] = str(val)
    return tags


def _tag_map(value: Any) -> dict[str, str]:
    """`principalTags` / `incomingTransitiveTags`: a plain {key: value} object."""
    if isinstance(value, Mapping):
        return {
            k: str(v)
            for k, v in list(value.items())[:_MAX_TAGS]
            if isinstance(k, str) and isinstance(v, str | int | float)
        }
    return _tag_list(value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for v in value[:_MAX_TAGS] if isinstance(v, str)]
    return []


def _frozen(tags: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(tags)) if tags else NO_TAGS
