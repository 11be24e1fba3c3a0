"""AWS clients for responders: aiobotocore, one account's credentials at a time.

Responders run in the account TrailGuard runs in, or, for other accounts, through a role
assumed per account (`assume_role_arn: {"222233334444": "arn:...", "*": "arn:aws:iam::
{account}:role/TrailGuardResponder"}`). Errors become ResponderError with the `retriable`
flag set from the AWS error code, so the dispatcher retries throttling and outages and
journals AccessDenied as failed at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
)

from detector.responders.base import ResponderError
from detector.responders.settings import CommonSettings

Clock = Callable[[], datetime]

# Error codes worth trying again; everything else (AccessDenied, NoSuchEntity, LimitExceeded,
# MalformedPolicyDocument) will fail the same way next time.
RETRIABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceFailure",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "ConcurrentModification",
    }
)
SESSION_NAME = "trailguard-responder"
# Responders retry on their own schedule (the dispatcher's); the client's own retries would
# only hide how long a call took.
CLIENT_CONFIG = AioConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                       read_timeout=15)  # fmt: skip


class AwsAccess:
    """Opens IAM and STS clients for an account, assuming the configured role when needed."""

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None,
        assume_role_arn: Mapping[str, Any],
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.assume_role_arn = dict(assume_role_arn)
        self._session = get_session()

    def role_for(self, account: str | None) -> str | None:
        if account is None:
            return None
        arn = self.assume_role_arn.get(account) or self.assume_role_arn.get("*")
        return str(arn).replace("{account}", account) if arn else None

    @contextlib.asynccontextmanager
    async def client(self, service: str, account: str | None = None) -> AsyncIterator[Any]:
        credentials: dict[str, str] = {}
        role = self.role_for(account)
        if role is not None:
            async with self._raw("sts") as sts:
                assumed = await call(
                    sts.assume_role(RoleArn=role, RoleSessionName=SESSION_NAME), f"assume {role}"
                )
            creds = assumed["Credentials"]
            credentials = {
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            }
        async with self._raw(service, **credentials) as client:
            yield client

    def _raw(self, service: str, **credentials: str) -> Any:
        return self._session.create_client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=CLIENT_CONFIG,
            **credentials,
        )

    async def caller_identity(self) -> dict[str, Any]:
        async with self._raw("sts") as sts:
            identity: dict[str, Any] = await call(sts.get_caller_identity(), "GetCallerIdentity")
        return identity


async def call(awaitable: Any, what: str) -> Any:
    """Await an AWS call, translating its failure into ResponderError."""
    try:
        return await awaitable
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        retriable = code in RETRIABLE_CODES or status >= 500
        message = error.get("Message") or str(exc)
        raise ResponderError(f"{what}: {code}: {message}", retriable=retriable, code=code) from exc
    except (EndpointConnectionError, BotoCoreError, OSError) as exc:
        # Connection refused, DNS, timeouts: the endpoint may be back on the next try.
        raise ResponderError(f"{what}: {exc}", retriable=True, code=type(exc).__name__) from exc


def own_role_arn(caller_arn: str) -> str | None:
    """The IAM role behind an assumed-role caller ARN (what a deny would be written on)."""
    # arn:aws:sts::111122223333:assumed-role/Name/session -> arn:aws:iam::111122223333:role/Name
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[5].startswith("assumed-role/"):
        name = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
    return None


async def own_identities(access: AwsAccess) -> tuple[frozenset[str], frozenset[str]]:
    """(ARN patterns the guardrails refuse, aws:userid values a written policy must spare)."""
    identity = await access.caller_identity()
    arn = str(identity.get("Arn", ""))
    user_id = str(identity.get("UserId", ""))
    arns = {arn} if arn else set()
    role = own_role_arn(arn) if arn else None
    if role is not None:
        # The role may sit under a path the assumed-role ARN does not show.
        prefix, name = role.rsplit("/", 1)
        arns.update({role, f"{prefix}/*/{name}"})
    # The roles TrailGuard assumes in other accounts are its own identity there.
    for template in access.assume_role_arn.values():
        arns.add(str(template).replace("{account}", "*"))
    return frozenset(arns), frozenset({user_id} if user_id else set())


class AwsResponderBase:
    """What every AWS responder shares: its name and settings, its guardrails, its AWS
    access, and TrailGuard's own identity (learned at `open`, so it is never acted on)."""

    def __init__(self, name: str, settings: CommonSettings, *, clock: Clock | None = None) -> None:
        self.name = name
        self.guardrails = settings.guardrails()
        self.access = AwsAccess(
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            assume_role_arn=settings.assume_role_arn,
        )
        self.own_arns: frozenset[str] = frozenset()
        self.own_user_ids: frozenset[str] = frozenset()
        self._clock: Clock = clock or (lambda: datetime.now(UTC))

    async def open(self) -> None:
        self.own_arns, self.own_user_ids = await own_identities(self.access)

    async def close(self) -> None:
        return None
