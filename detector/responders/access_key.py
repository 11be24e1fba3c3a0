"""`disable-access-key`: deactivate the IAM user's long-term key an agent signed with.

A long-term key (AKIA...) has no session and no issue time to deny on, so the key itself is
set Inactive (`UpdateAccessKey`). The person who owns the key loses it too and needs a new
one; the alert says so. Reactivating is one call, which is why this is preferred to deleting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from detector.config import parse_section
from detector.core.findings import Response
from detector.responders.aws import AwsResponderBase, Clock, call
from detector.responders.base import (
    RESPONDERS,
    Outcome,
    ResponderError,
    ResponderType,
    ResponseOutcome,
)
from detector.responders.settings import CommonSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class DisableAccessKeySettings(CommonSettings):
    pass


class DisableAccessKeyResponder(AwsResponderBase):
    """Sets one IAM user access key Inactive and checks that it reads back Inactive."""

    required_permissions: ClassVar[frozenset[str]] = frozenset(
        {"sts:GetCallerIdentity", "sts:AssumeRole", "iam:ListAccessKeys", "iam:UpdateAccessKey"}
    )

    def __init__(
        self, name: str, settings: DisableAccessKeySettings, *, clock: Clock | None = None
    ) -> None:
        super().__init__(name, settings, clock=clock)
        self.settings = settings

    def accepts(self, response: Response) -> bool:
        return response.action == "disable-access-key"

    async def respond(self, response: Response) -> ResponseOutcome:
        started = self._clock()
        principal = response.principal or ""
        key_id = response.access_key_id or ""
        if ":user/" not in principal or not key_id.startswith("AKIA"):
            return ResponseOutcome(
                outcome=Outcome.REFUSED,
                responder=self.name,
                reason="not an IAM user's long-term access key",
                started_at=started,
            )
        user = principal.rsplit("/", 1)[-1]
        account = response.account_id or principal.split(":")[4]
        async with self.access.client("iam", account) as iam:
            status = await _status(iam, user, key_id)
            if status == "Inactive":
                return ResponseOutcome(
                    outcome=Outcome.ALREADY_APPLIED,
                    responder=self.name,
                    reason=f"{key_id} of {user} is already inactive",
                    target=f"{principal}#{key_id}",
                    started_at=started,
                    verified_at=started,
                )
            await call(
                iam.update_access_key(UserName=user, AccessKeyId=key_id, Status="Inactive"),
                f"UpdateAccessKey {user}",
            )
            if await _status(iam, user, key_id) != "Inactive":
                raise ResponderError(f"{key_id} of {user} still reads back active", retriable=True)
        return ResponseOutcome(
            outcome=Outcome.APPLIED,
            responder=self.name,
            reason=f"access key {key_id} of {user} set Inactive",
            target=f"{principal}#{key_id}",
            started_at=started,
            verified_at=self._clock(),
        )


async def _status(iam: Any, user: str, key_id: str) -> str:
    marker: str | None = None
    while True:
        extra = {"Marker": marker} if marker else {}
        page = await call(iam.list_access_keys(UserName=user, **extra), f"ListAccessKeys {user}")
        for key in page.get("AccessKeyMetadata", []):
            if key.get("AccessKeyId") == key_id:
                return str(key.get("Status"))
        if not page.get("IsTruncated"):
            raise ResponderError(f"{user} has no access key {key_id}", retriable=False)
        marker = page.get("Marker")


def build(name: str, raw: Mapping[str, Any], source: str, key: str) -> DisableAccessKeyResponder:
    settings = parse_section(DisableAccessKeySettings, dict(raw), source=source, key=key)
    return DisableAccessKeyResponder(name, settings)


RESPONDERS.register(
    "disable-access-key", ResponderType(build, DisableAccessKeyResponder.required_permissions)
)
