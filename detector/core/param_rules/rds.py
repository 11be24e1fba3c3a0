"""RDS: shared snapshots, public instances, backups turned off."""

from __future__ import annotations

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import as_list, get, is_true, other_accounts
from detector.core.taxonomy import Category

RULES = RuleSet()


@RULES.rule(
    "rds-snapshot-shared",
    "rds:ModifyDBSnapshotAttribute rds:ModifyDBClusterSnapshotAttribute",
    Category.DATA_EXPOSURE,
    0,
    "an RDS snapshot's restore attribute given to 'all' or another account",
)
def _rds_snapshot_shared(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if str(get(params, "attributeName")).lower() != "restore":
        return None
    values = as_list(get(params, "valuesToAdd"))
    if "all" in values:
        return Hit(reason="RDS snapshot made public (restore by 'all')")
    accounts = other_accounts(values, event.account_id)
    if accounts:
        return Hit(reason=f"RDS snapshot shared with account {accounts[0]}")
    return None


@RULES.rule(
    "rds-instance-made-public",
    "rds:ModifyDBInstance rds:CreateDBInstance",
    Category.DATA_EXPOSURE,
    1,
    "an RDS instance set publicly accessible",
)
def _rds_public(event: CloudTrailEvent) -> Hit | None:
    if is_true(get(event.request_parameters, "publiclyAccessible")):
        return Hit(reason="RDS instance set publicly accessible")
    return None


@RULES.rule(
    "rds-backups-disabled",
    "rds:ModifyDBInstance",
    Category.DESTROY,
    1,
    "automated backups turned off (BackupRetentionPeriod 0)",
)
def _rds_backups_disabled(event: CloudTrailEvent) -> Hit | None:
    period = get(event.request_parameters, "backupRetentionPeriod")
    if period == 0 and not isinstance(period, bool):
        instance = get(event.request_parameters, "dBInstanceIdentifier")
        return Hit(reason=f"automated backups of RDS instance {instance} turned off")
    return None
