"""Secrets, parameters and keys: forced deletion, decrypted reads, grants to other accounts."""

from __future__ import annotations

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import account_of, get, is_true
from detector.core.taxonomy import Category

RULES = RuleSet()


@RULES.rule(
    "secret-deleted-without-recovery",
    "secretsmanager:DeleteSecret",
    Category.DESTROY,
    0,
    "a secret deleted with no recovery window",
)
def _secret_force_delete(event: CloudTrailEvent) -> Hit | None:
    if is_true(get(event.request_parameters, "forceDeleteWithoutRecovery")):
        return Hit(reason="secret deleted immediately, without a recovery window")
    return None


@RULES.rule(
    "ssm-parameter-decrypted",
    "ssm:GetParameter ssm:GetParameters ssm:GetParametersByPath ssm:GetParameterHistory",
    Category.CREDENTIAL_ACCESS,
    1,
    "SecureString parameters read with decryption",
)
def _ssm_decrypted(event: CloudTrailEvent) -> Hit | None:
    if is_true(get(event.request_parameters, "withDecryption")):
        return Hit(reason="SSM parameters read with decryption")
    return None


@RULES.rule(
    "kms-grant-to-foreign-account",
    "kms:CreateGrant",
    Category.DATA_EXPOSURE,
    0,
    "a KMS key grant to a principal in another account",
)
def _kms_foreign_grant(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    for role in ("granteePrincipal", "retiringPrincipal"):
        principal = get(params, role)
        account = account_of(principal) if isinstance(principal, str) else None
        if account and event.account_id and account != event.account_id:
            return Hit(reason=f"grant on key {get(params, 'keyId')} to account {account}")
    return None
