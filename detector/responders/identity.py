"""Learning TrailGuard's own identity at open, so no responder ever denies it."""

from __future__ import annotations

from detector.responders.aws import AwsAccess, own_role_arn


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
