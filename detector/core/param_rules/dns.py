"""Route 53: deleted record sets."""

from __future__ import annotations

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import as_list, get
from detector.core.taxonomy import Category

RULES = RuleSet()


@RULES.rule(
    "route53-record-deleted",
    "route53:ChangeResourceRecordSets",
    Category.DESTROY,
    1,
    "a DNS record set deleted",
)
def _route53_delete(event: CloudTrailEvent) -> Hit | None:
    for change in as_list(get(event.request_parameters, "changeBatch", "changes")):
        if str(get(change, "action")).upper() == "DELETE":
            name = get(change, "resourceRecordSet", "name")
            return Hit(reason=f"DNS record {name} deleted")
    return None
