"""Rules that read an event's parameters to raise its risk above the catalogue entry.

The same action can be routine or an attack depending on its arguments: a bucket policy for
CloudTrail's service principal versus one granting Principal "*". Each rule names the actions
it reads, checks the request (and response) and, when the parameters say so, returns a Hit with
a one-sentence reason. Rules never raise on odd shapes; they skip what they do not recognise.

One module per service family holds its rules; `FAMILIES` below is the one list of them, and
its order is the order rules are evaluated (and their reasons reported).
"""

from __future__ import annotations

from detector.core.param_rules import (
    dns,
    ec2,
    functions,
    iam,
    monitoring,
    rds,
    resource_policies,
    s3,
    secrets,
)
from detector.core.param_rules.base import Check, Hit, ParamRule, ParamRuleRegistry, RuleSet

__all__ = ["FAMILIES", "Check", "Hit", "ParamRule", "ParamRuleRegistry", "default_param_rules"]

FAMILIES: tuple[RuleSet, ...] = (
    resource_policies.RULES,
    functions.RULES,
    s3.RULES,
    ec2.RULES,
    rds.RULES,
    monitoring.RULES,
    dns.RULES,
    secrets.RULES,
    iam.RULES,
)


def default_param_rules() -> ParamRuleRegistry:
    """A fresh registry holding the shipped rules."""
    return ParamRuleRegistry(rule for family in FAMILIES for rule in family)
