"""IAM: trust policies opened, administrator access granted."""

from __future__ import annotations

import re
from typing import Any

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import as_list, get, json_object, policy_grant
from detector.core.taxonomy import Category

RULES = RuleSet()


@RULES.rule(
    "role-trust-opened",
    "iam:CreateRole iam:UpdateAssumeRolePolicy",
    Category.PERSISTENCE,
    0,
    "a role trust policy lets '*' or another account assume the role",
)
def _role_trust_opened(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    document = get(params, "assumeRolePolicyDocument") or get(params, "policyDocument")
    reason = policy_grant(document, event.account_id, what="trust policy")
    return Hit(reason=f"{reason} (role {get(params, 'roleName')})") if reason else None


_ADMIN_POLICY = re.compile(r":policy/AdministratorAccess$")


def _allows_everything(document: Any) -> bool:
    policy = json_object(document)
    for statement in as_list(get(policy, "Statement")):
        if str(get(statement, "Effect")).lower() != "allow":
            continue
        actions = as_list(get(statement, "Action"))
        if ("*" in actions or "*:*" in actions) and "*" in as_list(get(statement, "Resource")):
            return True
    return False


@RULES.rule(
    "admin-policy-granted",
    "iam:AttachUserPolicy iam:AttachRolePolicy iam:AttachGroupPolicy iam:PutUserPolicy"
    " iam:PutRolePolicy iam:PutGroupPolicy iam:CreatePolicyVersion",
    Category.PERMISSIONS,
    0,
    "AdministratorAccess or an Allow */* policy granted",
)
def _admin_policy(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    arn = get(params, "policyArn")
    target = get(params, "userName") or get(params, "roleName") or get(params, "groupName")
    if event.event_name.startswith("Attach") and isinstance(arn, str) and _ADMIN_POLICY.search(arn):
        return Hit(reason=f"AdministratorAccess attached to {target}")
    if _allows_everything(get(params, "policyDocument")):
        return Hit(reason=f"policy allowing every action on every resource granted to {target}")
    return None
