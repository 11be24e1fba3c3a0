"""Secrets and parameters: forced deletion, decrypted reads."""

from __future__ import annotations

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import get, is_true
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
