"""Services that watch the account: Macie, GuardDuty, Security Hub and Access Analyzer findings,
CloudTrail selectors, log retention, Bedrock model-invocation logging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import as_list, get, is_false
from detector.core.taxonomy import Category

RULES = RuleSet()


@RULES.rule(
    "macie-paused",
    "macie2:UpdateMacieSession",
    Category.DEFENSE_EVASION,
    0,
    "Macie session paused (as blind as disabling it)",
)
def _macie_paused(event: CloudTrailEvent) -> Hit | None:
    if str(get(event.request_parameters, "status")).upper() == "PAUSED":
        return Hit(reason="Macie session paused")
    return None


@RULES.rule(
    "guardduty-disabled",
    "guardduty:UpdateDetector",
    Category.DEFENSE_EVASION,
    0,
    "GuardDuty detector, or one of its protection plans, disabled",
)
def _guardduty_disabled(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if is_false(get(params, "enable")):
        return Hit(reason="GuardDuty detector disabled")
    # Protection plans (S3, EKS, runtime, malware, RDS, Lambda) turned off one by one.
    disabled = [
        str(get(feature, "name"))
        for feature in as_list(get(params, "features"))
        if str(get(feature, "status")).upper() == "DISABLED"
    ]
    if disabled:
        return Hit(reason=f"GuardDuty protection turned off: {', '.join(disabled)}")
    if is_false(get(params, "dataSources", "s3Logs", "enable")):
        return Hit(reason="GuardDuty S3 protection turned off")
    return None


def _advanced_selects_all_management(selectors: list[Any]) -> bool:
    for selector in selectors:
        fields = {
            str(get(f, "field")): f
            for f in as_list(get(selector, "fieldSelectors"))
            if isinstance(f, Mapping)
        }
        category = fields.get("eventCategory")
        if category is not None and "Management" in as_list(get(category, "equals")):
            # A readOnly field or excluded event sources narrow the management events logged.
            narrowed = "readOnly" in fields or "eventSource" in fields
            if not narrowed:
                return True
    return False


@RULES.rule(
    "cloudtrail-management-events-dropped",
    "cloudtrail:PutEventSelectors",
    Category.DEFENSE_EVASION,
    0,
    "trail event selectors stop or narrow management-event logging",
)
def _cloudtrail_selectors(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    trail = get(params, "trailName")
    advanced = get(params, "advancedEventSelectors")
    if isinstance(advanced, list):
        if _advanced_selects_all_management(advanced):
            return None
        return Hit(reason=f"advanced event selectors on trail {trail} drop management events")
    selectors = [s for s in as_list(get(params, "eventSelectors")) if isinstance(s, Mapping)]
    if not selectors:
        return None
    for selector in selectors:
        includes = not is_false(get(selector, "includeManagementEvents"))
        read_write = get(selector, "readWriteType")
        excluded = as_list(get(selector, "excludeManagementEventSources"))
        if includes and read_write in (None, "All") and not excluded:
            return None
    if any(not is_false(get(s, "includeManagementEvents")) for s in selectors):
        return Hit(reason=f"event selectors on trail {trail} log only part of management events")
    return Hit(reason=f"event selectors on trail {trail} stop logging management events")


_SHORT_RETENTION_DAYS = 7


@RULES.rule(
    "log-retention-shortened",
    "logs:PutRetentionPolicy",
    Category.DEFENSE_EVASION,
    1,
    f"a log group's retention cut to {_SHORT_RETENTION_DAYS} days or less",
)
def _log_retention(event: CloudTrailEvent) -> Hit | None:
    days = get(event.request_parameters, "retentionInDays")
    if isinstance(days, int) and not isinstance(days, bool) and days <= _SHORT_RETENTION_DAYS:
        group = get(event.request_parameters, "logGroupName")
        return Hit(reason=f"retention of log group {group} cut to {days} days")
    return None


# Security Hub workflow states that take a finding off everyone's list.
_HIDDEN_WORKFLOW = frozenset({"SUPPRESSED", "RESOLVED"})


@RULES.rule(
    "findings-suppressed",
    "securityhub:BatchUpdateFindings securityhub:UpdateFindings access-analyzer:UpdateFindings"
    " guardduty:ArchiveFindings",
    Category.DEFENSE_EVASION,
    0,
    "security findings suppressed, resolved or archived",
)
def _findings_suppressed(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    name = event.event_name
    if name == "BatchUpdateFindings":
        status = str(get(params, "workflow", "status")).upper()
        if status in _HIDDEN_WORKFLOW:
            count = len(as_list(get(params, "findingIdentifiers")))
            return Hit(reason=f"{count} Security Hub finding(s) set to {status}")
    elif name == "UpdateFindings" and event.event_source.startswith("securityhub"):
        if str(get(params, "recordState")).upper() == "ARCHIVED":
            return Hit(reason="Security Hub findings matching a filter archived")
    elif name == "UpdateFindings":
        if str(get(params, "status")).upper() == "ARCHIVED":
            return Hit(reason="IAM Access Analyzer findings archived")
    elif name == "ArchiveFindings":
        count = len(as_list(get(params, "findingIds")))
        if count:
            return Hit(reason=f"{count} GuardDuty finding(s) archived")
    return None


@RULES.rule(
    "macie-job-cancelled",
    "macie2:UpdateClassificationJob",
    Category.DEFENSE_EVASION,
    0,
    "a Macie classification job cancelled (a cancelled job cannot be resumed)",
)
def _macie_job_cancelled(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if str(get(params, "jobStatus")).upper() == "CANCELLED":
        return Hit(reason=f"Macie classification job {get(params, 'jobId')} cancelled")
    return None


@RULES.rule(
    "model-invocation-logging-removed",
    "bedrock:PutModelInvocationLoggingConfiguration",
    Category.DEFENSE_EVASION,
    0,
    "Bedrock model-invocation logging left with no destination or with text logging off",
)
def _model_invocation_logging(event: CloudTrailEvent) -> Hit | None:
    config = get(event.request_parameters, "loggingConfig")
    if not isinstance(config, Mapping):
        return None
    if get(config, "cloudWatchConfig") is None and get(config, "s3Config") is None:
        return Hit(reason="model-invocation logging given no destination")
    if is_false(get(config, "textDataDeliveryEnabled")):
        return Hit(reason="model-invocation logging stops recording prompts and completions")
    return None
