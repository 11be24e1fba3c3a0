"""Services that watch the account: Macie, GuardDuty, CloudTrail selectors, log retention."""

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
    1,
    "Macie session paused",
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
    "GuardDuty detector disabled",
)
def _guardduty_disabled(event: CloudTrailEvent) -> Hit | None:
    if is_false(get(event.request_parameters, "enable")):
        return Hit(reason="GuardDuty detector disabled")
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
