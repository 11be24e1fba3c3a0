"""Minting a task's credentials: sts:AssumeRole with the task's source identity, session tags
and the scope's session policy, then registering the task in the state store.

The task is registered only once AssumeRole has answered, so a refused call leaves nothing
behind; the registry row carries the access key id and assumed-role id the detector binds on.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from detector.core.scope_policy import policy_text
from detector.errors import ConfigError, DetectorError, TransientError
from detector.state.store import StateStore
from detector.state.tasks import TaskRow
from detector.tasks.settings import TaskSettings

# SourceIdentity and RoleSessionName: at most 64 characters of [\w+=,.@-].
_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}")
_AGENT = re.compile(r"[A-Za-z0-9_.@-]{1,32}")
# Session tag values: letters, digits, spaces and _.:/=+-@, at most 256 characters.
_TAG_VALUE = re.compile(r"[\w .:/=+\-@]{0,256}")
TAG_KEYS = ("task", "agent", "owner", "scope")


class TaskError(DetectorError):
    """STS refused or failed to mint the task's credentials."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


def new_task_id() -> str:
    return secrets.token_hex(6)


def source_identity(agent: str, task_id: str) -> str:
    if _AGENT.fullmatch(agent) is None:
        raise ConfigError(f"--agent {agent!r}: use 1-32 letters, digits or _.@-")
    identity = f"agent-{agent}-{task_id}"
    if _IDENTITY.fullmatch(identity) is None:
        raise ConfigError(f"source identity {identity!r} is not a valid STS source identity")
    return identity


def session_tags(
    *, task_id: str, agent: str, owner: str | None, scope: str
) -> list[dict[str, str]]:
    values = {"task": task_id, "agent": agent, "owner": owner, "scope": scope}
    tags = []
    for key in TAG_KEYS:
        value = values[key]
        if value is None:
            continue
        if _TAG_VALUE.fullmatch(value) is None:
            raise ConfigError(f"session tag {key}={value!r} has characters STS does not accept")
        tags.append({"Key": key, "Value": value})
    return tags


def start_task(
    *,
    store: StateStore,
    settings: TaskSettings,
    scope: str,
    policy: dict[str, Any],
    agent: str,
    role_arn: str,
    owner: str | None,
    duration: timedelta,
    now: datetime,
) -> tuple[TaskRow, Credentials]:
    """Assume `role_arn` for one agent task and register it. Raises TaskError, ConfigError."""
    task_id = new_task_id()
    identity = source_identity(agent, task_id)
    tags = session_tags(task_id=task_id, agent=agent, owner=owner, scope=scope)
    try:
        sts = boto3.client("sts", region_name=settings.region, endpoint_url=settings.endpoint_url)
        answer = sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName=identity,
            SourceIdentity=identity,
            Tags=tags,
            TransitiveTagKeys=[t["Key"] for t in tags],
            Policy=policy_text(policy),
            DurationSeconds=int(duration.total_seconds()),
        )
    except ClientError as exc:
        raise _refused(exc, role_arn) from exc
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
        raise TransientError(f"sts:AssumeRole {role_arn}: {exc}") from exc
    except BotoCoreError as exc:
        # No caller credentials, a profile that does not exist, a bad parameter.
        raise TaskError(f"sts:AssumeRole {role_arn}: {exc}") from exc
    raw = answer["Credentials"]
    credentials = Credentials(
        access_key_id=raw["AccessKeyId"],
        secret_access_key=raw["SecretAccessKey"],
        session_token=raw["SessionToken"],
        expiration=_utc(raw["Expiration"]),
    )
    row = TaskRow(
        task_id=task_id,
        agent=agent,
        owner=owner,
        scope=scope,
        role_arn=role_arn,
        source_identity=identity,
        created_at=now,
        expires_at=credentials.expiration,
        access_key_id=credentials.access_key_id,
        principal_id=answer["AssumedRoleUser"]["AssumedRoleId"],
    )
    store.put_task(row)
    return row, credentials


def _refused(exc: ClientError, role_arn: str) -> DetectorError:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", str(exc))
    if code == "PackedPolicyTooLarge":
        return TaskError(
            f"sts:AssumeRole {role_arn}: the session policy and tags together exceed AWS's "
            f"packed-size limit ({message}); split the scope into tasks of fewer services or "
            "use globs instead of lists of exact actions"
        )
    error: DetectorError = TaskError(f"sts:AssumeRole {role_arn} refused: {code}: {message}")
    if code in {"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure"}:
        error = TransientError(f"sts:AssumeRole {role_arn}: {code}: {message}")
    return error


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
