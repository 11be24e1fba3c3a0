"""Parameter rules: each fires on the risky form of its call and stays quiet on the routine one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.catalog_loader import load_catalog
from detector.core.actions import event_actions
from detector.core.events import CloudTrailEvent
from detector.core.param_rules import ParamRule, ParamRuleRegistry, default_param_rules
from detector.core.parse import parse_record
from detector.core.taxonomy import Category
from tests.conftest import make_event

CATALOG = load_catalog()
OWN = "111122223333"  # make_event's recipient account
FOREIGN = "444455556666"


def event(source: str, name: str, params: Any) -> CloudTrailEvent:
    return parse_record(
        make_event(
            eventSource=f"{source}.amazonaws.com",
            eventName=name,
            requestParameters=params,
            readOnly=False,
        )
    )


def fired_rules(evt: CloudTrailEvent) -> tuple[str, set[str]]:
    (action,) = event_actions(evt)
    entry = CATALOG.entry(action)
    return entry.action, {rule.name for rule, _ in CATALOG.param_rules.evaluate(evt, entry.action)}


def policy(principal: Any, *, effect: str = "Allow", condition: Any = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": effect,
        "Principal": principal,
        "Action": "*",
        "Resource": "*",
    }
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def as_text(document: dict[str, Any]) -> str:
    # Most services log policy documents as JSON strings; S3 logs them as objects.
    return json.dumps(document)


PUBLIC = policy("*")
PUBLIC_AWS = policy({"AWS": "*"})
FOREIGN_ROOT = policy({"AWS": f"arn:aws:iam::{FOREIGN}:root"})
OWN_ROOT = policy({"AWS": f"arn:aws:iam::{OWN}:root"})
CLOUDTRAIL_DELIVERY = policy(
    {"Service": "cloudtrail.amazonaws.com"},
    condition={"StringEquals": {"aws:SourceAccount": OWN}},
)
ORG_ONLY = policy("*", condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}})
DENY_INSECURE = policy("*", effect="Deny", condition={"Bool": {"aws:SecureTransport": "false"}})
NOT_PRINCIPAL = {
    "Statement": [
        {"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{OWN}:root"}, "Action": "*"}
    ]
}
ALL_ACCESS = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
DESCRIBE_ONLY = {"Statement": [{"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": "*"}]}
LAYER = f"arn:aws:lambda:us-east-1:{OWN}:layer:tracing:3"
FOREIGN_LAYER = f"arn:aws:lambda:us-east-1:{FOREIGN}:layer:tracing:3"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def acl_grant(uri: str) -> dict[str, Any]:
    grant = {"Grantee": {"xsi:type": "Group", "URI": uri}, "Permission": "READ"}
    return {"AccessControlPolicy": {"AccessControlList": {"Grant": [grant]}}}


def ingress(cidr: str, port: int, *, v6: bool = False, protocol: str = "tcp") -> dict[str, Any]:
    ranges = {"items": [{"cidrIpv6" if v6 else "cidrIp": cidr}]}
    permission = {
        "ipProtocol": protocol,
        "fromPort": port,
        "toPort": port,
        "ipv6Ranges" if v6 else "ipRanges": ranges,
    }
    return {"groupId": "sg-01", "ipPermissions": {"items": [permission]}}


def acl_entry(cidr: str, *, egress: bool = False, action: str = "allow") -> dict[str, Any]:
    key = "ipv6CidrBlock" if ":" in cidr else "cidrBlock"
    return {
        "networkAclId": "acl-01",
        "ruleNumber": 100,
        "egress": egress,
        "ruleAction": action,
        "aclProtocol": "6",
        "portRange": {"from": 22, "to": 22},
        key: cidr,
    }


def share(attribute: str, verb: str, item: dict[str, str]) -> dict[str, Any]:
    return {attribute: {verb: {"items": [item]}}}


def selectors(include: bool = True, read_write: str = "All", **extra: Any) -> dict[str, Any]:
    selector = {"includeManagementEvents": include, "readWriteType": read_write, **extra}
    return {"trailName": "org-trail", "eventSelectors": [selector]}


def advanced(*field_selectors: dict[str, Any]) -> dict[str, Any]:
    return {
        "trailName": "org-trail",
        "advancedEventSelectors": [{"name": "s", "fieldSelectors": list(field_selectors)}],
    }


def lifecycle(*rules: dict[str, Any]) -> dict[str, Any]:
    body: Any = rules[0] if len(rules) == 1 else list(rules)
    return {"bucketName": "audit", "LifecycleConfiguration": {"Rule": body}}


def record_change(action: str) -> dict[str, Any]:
    change = {"action": action, "resourceRecordSet": {"name": "api.example.com.", "type": "A"}}
    return {"hostedZoneId": "Z1", "changeBatch": {"changes": [change]}}


# Each case: rule, service, eventName, requestParameters, then for firing cases the expected
# category, tier and a fragment the reasons must contain (what happened, in words).
FIRES = [
    # --- public-resource-policy: one case per action it reads
    ("public-resource-policy", "s3", "PutBucketPolicy", {"bucketName": "b", "bucketPolicy": PUBLIC},
     Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-resource-policy", "s3", "PutBucketPolicy",
     {"bucketName": "b", "bucketPolicy": FOREIGN_ROOT}, Category.DATA_EXPOSURE, 0,
     f"account {FOREIGN}"),
    ("public-resource-policy", "s3", "PutBucketPolicy",
     {"bucketName": "b", "bucketPolicy": NOT_PRINCIPAL}, Category.DATA_EXPOSURE, 0, "NotPrincipal"),
    ("public-resource-policy", "sqs", "SetQueueAttributes",
     {"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{OWN}/q",
      "attributes": {"Policy": as_text(PUBLIC)}}, Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-resource-policy", "sns", "SetTopicAttributes",
     {"topicArn": f"arn:aws:sns:us-east-1:{OWN}:t", "attributeName": "Policy",
      "attributeValue": as_text(PUBLIC_AWS)}, Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-resource-policy", "kms", "PutKeyPolicy",
     {"keyId": "k-1", "policyName": "default", "policy": as_text(FOREIGN_ROOT)},
     Category.DATA_EXPOSURE, 0, f"account {FOREIGN}"),
    ("public-resource-policy", "kms", "CreateKey", {"policy": as_text(PUBLIC)},
     Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-resource-policy", "ecr", "SetRepositoryPolicy",
     {"repositoryName": "web", "policyText": as_text(FOREIGN_ROOT)}, Category.DATA_EXPOSURE, 0,
     f"account {FOREIGN}"),
    ("public-resource-policy", "secretsmanager", "PutResourcePolicy",
     {"secretId": "prod/db", "resourcePolicy": as_text(PUBLIC)}, Category.DATA_EXPOSURE, 0,
     "Principal '*'"),
    ("public-resource-policy", "glacier", "SetVaultAccessPolicy",
     {"accountId": "-", "vaultName": "v", "policy": {"policy": as_text(PUBLIC)}},
     Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-resource-policy", "backup", "PutBackupVaultAccessPolicy",
     {"backupVaultName": "v", "policy": as_text(FOREIGN_ROOT)}, Category.DATA_EXPOSURE, 0,
     f"account {FOREIGN}"),
    # --- public-lambda-permission
    ("public-lambda-permission", "lambda", "AddPermission20150331v2",
     {"action": "lambda:InvokeFunction", "functionName": "f", "principal": "*",
      "statementId": "backdoor"}, Category.DATA_EXPOSURE, 0, "principal '*'"),
    ("public-lambda-permission", "lambda", "AddPermission20150331v2",
     {"action": "lambda:InvokeFunction", "functionName": "f", "principal": FOREIGN},
     Category.DATA_EXPOSURE, 0, f"account {FOREIGN}"),
    ("public-lambda-permission", "lambda", "AddLayerVersionPermission20181031",
     {"layerName": "tracing", "versionNumber": 3, "action": "lambda:GetLayerVersion",
      "principal": "*"}, Category.DATA_EXPOSURE, 0, "principal '*'"),
    # --- public-s3-acl
    ("public-s3-acl", "s3", "PutBucketAcl", {"bucketName": "b", "x-amz-acl": ["public-read"]},
     Category.DATA_EXPOSURE, 0, "public-read"),
    ("public-s3-acl", "s3", "PutObject",
     {"bucketName": "b", "key": "k", "x-amz-acl": "public-read-write"}, Category.DATA_EXPOSURE, 0,
     "public-read-write"),
    ("public-s3-acl", "s3", "PutBucketAcl", {"bucketName": "b", **acl_grant(ALL_USERS)},
     Category.DATA_EXPOSURE, 0, "AllUsers"),
    ("public-s3-acl", "s3", "CreateBucket", {"bucketName": "b", "x-amz-acl": "authenticated-read"},
     Category.DATA_EXPOSURE, 0, "authenticated-read"),
    # --- public-access-block-weakened
    ("public-access-block-weakened", "s3", "PutBucketPublicAccessBlock",
     {"bucketName": "b", "PublicAccessBlockConfiguration": {
         "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
         "RestrictPublicBuckets": False}},
     Category.DATA_EXPOSURE, 1, "BlockPublicPolicy, RestrictPublicBuckets turned off"),
    ("public-access-block-weakened", "s3", "DeleteBucketPublicAccessBlock", {"bucketName": "b"},
     Category.DATA_EXPOSURE, 1, "removed for the bucket"),
    ("public-access-block-weakened", "s3", "PutAccountPublicAccessBlock",
     {"PublicAccessBlockConfiguration": {"BlockPublicAcls": False}}, Category.DATA_EXPOSURE, 0,
     "BlockPublicAcls turned off"),
    ("public-access-block-weakened", "s3", "DeleteAccountPublicAccessBlock", {"accountId": OWN},
     Category.DATA_EXPOSURE, 0, "removed for the account"),
    # --- ami-shared
    ("ami-shared", "ec2", "ModifyImageAttribute",
     {"imageId": "ami-1", **share("launchPermission", "add", {"userId": FOREIGN})},
     Category.DATA_EXPOSURE, 0, f"shared with account {FOREIGN}"),
    ("ami-shared", "ec2", "ModifyImageAttribute",
     {"imageId": "ami-1", **share("launchPermission", "add", {"group": "all"})},
     Category.DATA_EXPOSURE, 0, "AMI made public"),
    # --- ebs-snapshot-shared
    ("ebs-snapshot-shared", "ec2", "ModifySnapshotAttribute",
     {"snapshotId": "snap-1", "attributeType": "CREATE_VOLUME_PERMISSION",
      **share("createVolumePermission", "add", {"userId": FOREIGN})},
     Category.DATA_EXPOSURE, 0, f"shared with account {FOREIGN}"),
    ("ebs-snapshot-shared", "ec2", "ModifySnapshotAttribute",
     {"snapshotId": "snap-1", **share("createVolumePermission", "add", {"group": "all"})},
     Category.DATA_EXPOSURE, 0, "EBS snapshot made public"),
    # --- rds-snapshot-shared
    ("rds-snapshot-shared", "rds", "ModifyDBSnapshotAttribute",
     {"dBSnapshotIdentifier": "s", "attributeName": "restore", "valuesToAdd": [FOREIGN]},
     Category.DATA_EXPOSURE, 0, f"shared with account {FOREIGN}"),
    ("rds-snapshot-shared", "rds", "ModifyDBClusterSnapshotAttribute",
     {"dBClusterSnapshotIdentifier": "s", "attributeName": "restore", "valuesToAdd": ["all"]},
     Category.DATA_EXPOSURE, 0, "made public"),
    # --- security-group-open-to-internet: admin ports and all traffic are worse
    ("security-group-open-to-internet", "ec2", "AuthorizeSecurityGroupIngress",
     ingress("0.0.0.0/0", 22), Category.DATA_EXPOSURE, 0, "opens tcp 22 to 0.0.0.0/0"),
    ("security-group-open-to-internet", "ec2", "AuthorizeSecurityGroupIngress",
     ingress("0.0.0.0/0", 443), Category.DATA_EXPOSURE, 1, "opens tcp 443 to 0.0.0.0/0"),
    ("security-group-open-to-internet", "ec2", "AuthorizeSecurityGroupIngress",
     ingress("::/0", 443, v6=True), Category.DATA_EXPOSURE, 1, "to ::/0"),
    ("security-group-open-to-internet", "ec2", "AuthorizeSecurityGroupIngress",
     ingress("0.0.0.0/0", -1, protocol="-1"), Category.DATA_EXPOSURE, 0, "opens -1"),
    ("security-group-open-to-internet", "ec2", "AuthorizeSecurityGroupIngress",
     {"groupName": "legacy", "ipProtocol": "tcp", "fromPort": 3389, "toPort": 3389,
      "cidrIp": "0.0.0.0/0"}, Category.DATA_EXPOSURE, 0, "security group legacy opens tcp 3389"),
    # --- network-acl-open-ingress
    ("network-acl-open-ingress", "ec2", "CreateNetworkAclEntry", acl_entry("0.0.0.0/0"),
     Category.DATA_EXPOSURE, 1, "allows ingress from 0.0.0.0/0"),
    ("network-acl-open-ingress", "ec2", "ReplaceNetworkAclEntry", acl_entry("::/0"),
     Category.DATA_EXPOSURE, 1, "allows ingress from ::/0"),
    # --- rds-instance-made-public
    ("rds-instance-made-public", "rds", "ModifyDBInstance",
     {"dBInstanceIdentifier": "orders", "publiclyAccessible": True}, Category.DATA_EXPOSURE, 1,
     "publicly accessible"),
    ("rds-instance-made-public", "rds", "CreateDBInstance",
     {"dBInstanceIdentifier": "orders", "engine": "mysql", "publiclyAccessible": True},
     Category.DATA_EXPOSURE, 1, "publicly accessible"),
    # --- macie-paused
    ("macie-paused", "macie2", "UpdateMacieSession", {"status": "PAUSED"},
     Category.DEFENSE_EVASION, 0, "paused"),
    # --- guardduty-disabled
    ("guardduty-disabled", "guardduty", "UpdateDetector", {"detectorId": "d-1", "enable": False},
     Category.DEFENSE_EVASION, 0, "disabled"),
    # --- cloudtrail-management-events-dropped
    ("cloudtrail-management-events-dropped", "cloudtrail", "PutEventSelectors",
     selectors(include=False, read_write="ReadOnly", dataResources=[{"type": "AWS::S3::Object"}]),
     Category.DEFENSE_EVASION, 0, "stop logging management events"),
    ("cloudtrail-management-events-dropped", "cloudtrail", "PutEventSelectors",
     selectors(read_write="ReadOnly"), Category.DEFENSE_EVASION, 0,
     "log only part of management events"),
    ("cloudtrail-management-events-dropped", "cloudtrail", "PutEventSelectors",
     selectors(excludeManagementEventSources=["kms.amazonaws.com"]), Category.DEFENSE_EVASION, 0,
     "log only part of management events"),
    ("cloudtrail-management-events-dropped", "cloudtrail", "PutEventSelectors",
     advanced({"field": "eventCategory", "equals": ["Data"]},
              {"field": "resources.type", "equals": ["AWS::S3::Object"]}),
     Category.DEFENSE_EVASION, 0, "drop management events"),
    ("cloudtrail-management-events-dropped", "cloudtrail", "PutEventSelectors",
     advanced({"field": "eventCategory", "equals": ["Management"]},
              {"field": "readOnly", "equals": ["true"]}),
     Category.DEFENSE_EVASION, 0, "drop management events"),
    # --- s3-access-logging-disabled
    ("s3-access-logging-disabled", "s3", "PutBucketLogging",
     {"bucketName": "web", "BucketLoggingStatus": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}},
     Category.DEFENSE_EVASION, 1, "logging turned off for web"),
    # --- log-retention-shortened
    ("log-retention-shortened", "logs", "PutRetentionPolicy",
     {"logGroupName": "/aws/cloudtrail", "retentionInDays": 1}, Category.DEFENSE_EVASION, 1,
     "cut to 1 days"),
    ("log-retention-shortened", "logs", "PutRetentionPolicy",
     {"logGroupName": "/aws/cloudtrail", "retentionInDays": 7}, Category.DEFENSE_EVASION, 1,
     "cut to 7 days"),
    # --- s3-lifecycle-expiration
    ("s3-lifecycle-expiration", "s3", "PutBucketLifecycle",
     lifecycle({"ID": "nuke", "Status": "Enabled", "Expiration": {"Days": 1},
                "Filter": {"Prefix": "*"}}), Category.DESTROY, 1, "nuke expires objects in audit"),
    ("s3-lifecycle-expiration", "s3", "PutBucketLifecycleConfiguration",
     lifecycle({"ID": "archive", "Status": "Enabled", "Transition": {"Days": 30}},
               {"ID": "old", "Status": "Enabled", "NoncurrentVersionExpiration":
                {"NoncurrentDays": 1}}), Category.DESTROY, 1, "old expires objects"),
    ("s3-lifecycle-expiration", "s3", "PutBucketLifecycle",
     lifecycle({"ID": "sunset", "Status": "Enabled",
                "Expiration": {"Date": "2026-01-01T00:00:00Z"}}), Category.DESTROY, 1,
     "sunset expires objects"),
    # --- s3-versioning-suspended
    ("s3-versioning-suspended", "s3", "PutBucketVersioning",
     {"bucketName": "audit", "VersioningConfiguration": {"Status": "Suspended"}},
     Category.DESTROY, 1, "suspended on bucket audit"),
    # --- rds-backups-disabled
    ("rds-backups-disabled", "rds", "ModifyDBInstance",
     {"dBInstanceIdentifier": "orders", "backupRetentionPeriod": 0}, Category.DESTROY, 1,
     "backups of RDS instance orders turned off"),
    # --- route53-record-deleted
    ("route53-record-deleted", "route53", "ChangeResourceRecordSets", record_change("DELETE"),
     Category.DESTROY, 1, "api.example.com. deleted"),
    # --- secret-deleted-without-recovery
    ("secret-deleted-without-recovery", "secretsmanager", "DeleteSecret",
     {"secretId": "prod/db", "forceDeleteWithoutRecovery": True}, Category.DESTROY, 0,
     "without a recovery window"),
    # --- lambda-layer-added: a layer from another account is worse
    ("lambda-layer-added", "lambda", "UpdateFunctionConfiguration20150331v2",
     {"functionName": "f", "layers": [LAYER]}, Category.PERSISTENCE, 1, f"given layer {LAYER}"),
    ("lambda-layer-added", "lambda", "UpdateFunctionConfiguration20150331v2",
     {"functionName": "f", "layers": [FOREIGN_LAYER]}, Category.PERSISTENCE, 0,
     "layer from another account"),
    ("lambda-layer-added", "lambda", "CreateFunction20150331",
     {"functionName": "f", "runtime": "python3.12", "layers": [LAYER]}, Category.PERSISTENCE, 1,
     "given layer"),
    # --- role-trust-opened
    ("role-trust-opened", "iam", "CreateRole",
     {"roleName": "ops", "assumeRolePolicyDocument": as_text(FOREIGN_ROOT)},
     Category.PERSISTENCE, 0, f"grants account {FOREIGN} (role ops)"),
    ("role-trust-opened", "iam", "UpdateAssumeRolePolicy",
     {"roleName": "ops", "policyDocument": as_text(PUBLIC_AWS)}, Category.PERSISTENCE, 0,
     "Principal '*'"),
    # --- admin-policy-granted
    ("admin-policy-granted", "iam", "AttachUserPolicy",
     {"userName": "mallory", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
     Category.PERMISSIONS, 0, "AdministratorAccess attached to mallory"),
    ("admin-policy-granted", "iam", "AttachRolePolicy",
     {"roleName": "ops", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
     Category.PERMISSIONS, 0, "AdministratorAccess attached to ops"),
    ("admin-policy-granted", "iam", "PutRolePolicy",
     {"roleName": "ops", "policyName": "p", "policyDocument": as_text(ALL_ACCESS)},
     Category.PERMISSIONS, 0, "every action on every resource"),
    ("admin-policy-granted", "iam", "CreatePolicyVersion",
     {"policyArn": f"arn:aws:iam::{OWN}:policy/app", "policyDocument": as_text(ALL_ACCESS),
      "setAsDefault": True}, Category.PERMISSIONS, 0, "every action on every resource"),
    # --- ec2-user-data-read
    ("ec2-user-data-read", "ec2", "DescribeInstanceAttribute",
     {"instanceId": "i-0aa", "attribute": "userData"}, Category.CREDENTIAL_ACCESS, 2,
     "user data of instance i-0aa"),
    # --- ssm-parameter-decrypted
    ("ssm-parameter-decrypted", "ssm", "GetParameters",
     {"names": ["/prod/db/password"], "withDecryption": True}, Category.CREDENTIAL_ACCESS, 1,
     "with decryption"),
    ("ssm-parameter-decrypted", "ssm", "GetParametersByPath",
     {"path": "/prod", "recursive": True, "withDecryption": "true"}, Category.CREDENTIAL_ACCESS, 1,
     "with decryption"),
    # --- resource policies of the services that take one (request shapes from botocore)
    ("public-resource-policy", "es", "UpdateDomainConfig",
     {"domainName": "logs", "accessPolicies": as_text(PUBLIC_AWS)}, Category.DATA_EXPOSURE, 0,
     "Principal '*'"),
    ("public-resource-policy", "es", "CreateDomain",
     {"domainName": "logs", "engineVersion": "OpenSearch_2.11",
      "accessPolicies": as_text(FOREIGN_ROOT)}, Category.DATA_EXPOSURE, 0, FOREIGN),
    ("public-resource-policy", "es", "CreateElasticsearchDomain",
     {"domainName": "logs", "accessPolicies": as_text(PUBLIC)}, Category.DATA_EXPOSURE, 0,
     "Principal '*'"),
    ("public-resource-policy", "es", "UpdateElasticsearchDomainConfig",
     {"domainName": "logs", "accessPolicies": as_text(PUBLIC)}, Category.DATA_EXPOSURE, 0,
     "Principal '*'"),
    ("public-resource-policy", "elasticfilesystem", "PutFileSystemPolicy",
     {"fileSystemId": "fs-01", "policy": as_text(PUBLIC_AWS),
      "bypassPolicyLockoutSafetyCheck": False}, Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-resource-policy", "ecr", "PutRegistryPolicy", {"policyText": as_text(FOREIGN_ROOT)},
     Category.DATA_EXPOSURE, 0, FOREIGN),
    ("public-resource-policy", "cloudtrail", "PutResourcePolicy",
     {"resourceArn": f"arn:aws:cloudtrail:us-east-1:{OWN}:channel/c-1",
      "resourcePolicy": as_text(FOREIGN_ROOT)}, Category.DATA_EXPOSURE, 0, FOREIGN),
    # --- public-api-policy
    ("public-api-policy", "apigateway", "CreateRestApi",
     {"name": "orders", "policy": as_text(PUBLIC)}, Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-api-policy", "apigateway", "UpdateRestApi",
     {"restApiId": "a1b2c3", "patchOperations": [
         {"op": "replace", "path": "/policy", "value": as_text(FOREIGN_ROOT)}]},
     Category.DATA_EXPOSURE, 0, FOREIGN),
    # --- foreign-account-permission
    ("foreign-account-permission", "sns", "AddPermission",
     {"topicArn": f"arn:aws:sns:us-east-1:{OWN}:alerts", "label": "x",
      "aWSAccountId": [FOREIGN], "actionName": ["Publish"]}, Category.DATA_EXPOSURE, 0, FOREIGN),
    ("foreign-account-permission", "sqs", "AddPermission",
     {"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{OWN}/jobs", "label": "x",
      "aWSAccountIds": ["*"], "actions": ["SendMessage"]}, Category.DATA_EXPOSURE, 0,
     "every AWS account"),
    # --- public-access-point (S3 Control requests nest members under a <Operation>Request)
    ("public-access-point", "s3", "PutAccessPointPolicy",
     {"name": "reports-ap", "PutAccessPointPolicyRequest": {
         "xmlns": "http://awss3control.amazonaws.com/doc/2018-08-20/",
         "Policy": as_text(PUBLIC)}}, Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-access-point", "s3", "PutMultiRegionAccessPointPolicy",
     {"PutMultiRegionAccessPointPolicyRequest": {"Details": {
         "Name": "global", "Policy": as_text(FOREIGN_ROOT)}}}, Category.DATA_EXPOSURE, 0, FOREIGN),
    ("public-access-point", "s3", "PutAccessPointPolicyForObjectLambda",
     {"name": "olap", "PutAccessPointPolicyForObjectLambdaRequest": {
         "Policy": as_text(PUBLIC_AWS)}}, Category.DATA_EXPOSURE, 0, "Principal '*'"),
    ("public-access-point", "s3", "CreateAccessPoint",
     {"name": "reports-ap", "CreateAccessPointRequest": {"Bucket": "reports",
      "PublicAccessBlockConfiguration": {"BlockPublicAcls": "true", "IgnorePublicAcls": "true",
                                         "BlockPublicPolicy": "false",
                                         "RestrictPublicBuckets": "false"}}},
     Category.DATA_EXPOSURE, 1, "BlockPublicPolicy, RestrictPublicBuckets off"),
    ("public-access-point", "s3", "CreateMultiRegionAccessPoint",
     {"CreateMultiRegionAccessPointRequest": {"Details": {"Name": "global",
      "PublicAccessBlock": {"BlockPublicPolicy": False}, "Regions": [{"Bucket": "a"}]}}},
     Category.DATA_EXPOSURE, 1, "BlockPublicPolicy off"),
    # --- public-function-url
    ("public-function-url", "lambda", "CreateFunctionUrlConfig20211031",
     {"functionName": "export", "authType": "NONE"}, Category.DATA_EXPOSURE, 0,
     "needs no authentication"),
    ("public-function-url", "lambda", "UpdateFunctionUrlConfig20211031",
     {"functionName": "export", "authType": "NONE", "cors": {"allowOrigins": ["*"]}},
     Category.DATA_EXPOSURE, 0, "needs no authentication"),
    # --- kms-grant-to-foreign-account
    ("kms-grant-to-foreign-account", "kms", "CreateGrant",
     {"keyId": f"arn:aws:kms:us-east-1:{OWN}:key/k-1",
      "granteePrincipal": f"arn:aws:iam::{FOREIGN}:role/reader", "operations": ["Decrypt"]},
     Category.DATA_EXPOSURE, 0, FOREIGN),
    ("kms-grant-to-foreign-account", "kms", "CreateGrant",
     {"keyId": "k-1", "granteePrincipal": f"arn:aws:iam::{OWN}:role/app",
      "retiringPrincipal": f"arn:aws:iam::{FOREIGN}:root", "operations": ["Decrypt"]},
     Category.DATA_EXPOSURE, 0, FOREIGN),
    # --- findings-suppressed
    ("findings-suppressed", "securityhub", "BatchUpdateFindings",
     {"findingIdentifiers": [{"id": "f-1", "productArn": "arn:aws:securityhub:us-east-1::p"}],
      "workflow": {"status": "SUPPRESSED"}, "note": {"text": "noise", "updatedBy": "x"}},
     Category.DEFENSE_EVASION, 0, "set to SUPPRESSED"),
    ("findings-suppressed", "securityhub", "UpdateFindings",
     {"filters": {"generatorId": [{"value": "x", "comparison": "EQUALS"}]},
      "recordState": "ARCHIVED"}, Category.DEFENSE_EVASION, 0, "archived"),
    ("findings-suppressed", "access-analyzer", "UpdateFindings",
     {"analyzerArn": f"arn:aws:access-analyzer:us-east-1:{OWN}:analyzer/a", "ids": ["f-1"],
      "status": "ARCHIVED"}, Category.DEFENSE_EVASION, 0, "Access Analyzer findings archived"),
    ("findings-suppressed", "guardduty", "ArchiveFindings",
     {"detectorId": "d-1", "findingIds": ["f-1", "f-2"]}, Category.DEFENSE_EVASION, 0,
     "2 GuardDuty finding(s) archived"),
    # --- macie-job-cancelled
    ("macie-job-cancelled", "macie2", "UpdateClassificationJob",
     {"jobId": "j-1", "jobStatus": "CANCELLED"}, Category.DEFENSE_EVASION, 0, "j-1 cancelled"),
    # --- guardduty-disabled, one protection plan at a time
    ("guardduty-disabled", "guardduty", "UpdateDetector",
     {"detectorId": "d-1", "features": [{"name": "S3_DATA_EVENTS", "status": "DISABLED"},
                                         {"name": "EKS_AUDIT_LOGS", "status": "ENABLED"}]},
     Category.DEFENSE_EVASION, 0, "turned off: S3_DATA_EVENTS"),
    ("guardduty-disabled", "guardduty", "UpdateDetector",
     {"detectorId": "d-1", "dataSources": {"s3Logs": {"enable": False}}},
     Category.DEFENSE_EVASION, 0, "S3 protection turned off"),
    # --- model-invocation-logging-removed
    ("model-invocation-logging-removed", "bedrock", "PutModelInvocationLoggingConfiguration",
     {"loggingConfig": {"textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": True}},
     Category.DEFENSE_EVASION, 0, "no destination"),
    ("model-invocation-logging-removed", "bedrock", "PutModelInvocationLoggingConfiguration",
     {"loggingConfig": {"cloudWatchConfig": {"logGroupName": "/bedrock", "roleArn": "r"},
                        "textDataDeliveryEnabled": False}},
     Category.DEFENSE_EVASION, 0, "stops recording prompts"),
]  # fmt: skip

# The same calls in the shape routine work gives them.
QUIET = [
    ("public-resource-policy", "s3", "PutBucketPolicy",
     {"bucketName": "trail-logs", "bucketPolicy": CLOUDTRAIL_DELIVERY}),
    ("public-resource-policy", "s3", "PutBucketPolicy",
     {"bucketName": "shared", "bucketPolicy": ORG_ONLY}),
    ("public-resource-policy", "s3", "PutBucketPolicy",
     {"bucketName": "b", "bucketPolicy": DENY_INSECURE}),
    ("public-resource-policy", "kms", "PutKeyPolicy",
     {"keyId": "k-1", "policyName": "default", "policy": as_text(OWN_ROOT)}),
    ("public-resource-policy", "sns", "SetTopicAttributes",
     {"topicArn": f"arn:aws:sns:us-east-1:{OWN}:t", "attributeName": "DisplayName",
      "attributeValue": "*"}),
    ("public-lambda-permission", "lambda", "AddPermission20150331v2",
     {"action": "lambda:InvokeFunction", "functionName": "f", "principal": "s3.amazonaws.com",
      "sourceArn": "arn:aws:s3:::uploads", "sourceAccount": OWN}),
    ("public-lambda-permission", "lambda", "AddPermission20150331v2",
     {"action": "lambda:InvokeFunction", "functionName": "f", "principal": OWN}),
    ("public-s3-acl", "s3", "PutBucketAcl", {"bucketName": "b", "x-amz-acl": ["private"]}),
    ("public-s3-acl", "s3", "PutBucketAcl",
     {"bucketName": "logs", **acl_grant("http://acs.amazonaws.com/groups/s3/LogDelivery")}),
    ("public-access-block-weakened", "s3", "PutBucketPublicAccessBlock",
     {"bucketName": "b", "PublicAccessBlockConfiguration": {
         "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
         "RestrictPublicBuckets": True}}),
    ("ami-shared", "ec2", "ModifyImageAttribute",
     {"imageId": "ami-1", **share("launchPermission", "add", {"userId": OWN})}),
    ("ami-shared", "ec2", "ModifyImageAttribute",
     {"imageId": "ami-1", **share("launchPermission", "remove", {"userId": FOREIGN})}),
    ("ebs-snapshot-shared", "ec2", "ModifySnapshotAttribute",
     {"snapshotId": "snap-1", **share("createVolumePermission", "add", {"userId": OWN})}),
    ("ebs-snapshot-shared", "ec2", "ModifySnapshotAttribute",
     {"snapshotId": "snap-1", **share("createVolumePermission", "remove", {"group": "all"})}),
    ("rds-snapshot-shared", "rds", "ModifyDBSnapshotAttribute",
     {"dBSnapshotIdentifier": "s", "attributeName": "restore", "valuesToAdd": [OWN]}),
    ("rds-snapshot-shared", "rds", "ModifyDBSnapshotAttribute",
     {"dBSnapshotIdentifier": "s", "attributeName": "restore", "valuesToRemove": ["all"]}),
    ("security-group-open-to-internet", "ec2", "AuthorizeSecurityGroupIngress",
     ingress("10.0.0.0/8", 22)),
    ("security-group-open-to-internet", "ec2", "AuthorizeSecurityGroupIngress",
     ingress("2001:db8::/32", 443, v6=True)),
    ("network-acl-open-ingress", "ec2", "CreateNetworkAclEntry", acl_entry("10.0.0.0/16")),
    ("network-acl-open-ingress", "ec2", "CreateNetworkAclEntry",
     acl_entry("0.0.0.0/0", egress=True)),
    ("network-acl-open-ingress", "ec2", "ReplaceNetworkAclEntry",
     acl_entry("0.0.0.0/0", action="deny")),
    ("rds-instance-made-public", "rds", "CreateDBInstance",
     {"dBInstanceIdentifier": "orders", "engine": "mysql", "publiclyAccessible": False}),
    ("macie-paused", "macie2", "UpdateMacieSession", {"status": "ENABLED"}),
    ("guardduty-disabled", "guardduty", "UpdateDetector",
     {"detectorId": "d-1", "enable": True, "findingPublishingFrequency": "FIFTEEN_MINUTES"}),
    ("cloudtrail-management-events-dropped", "cloudtrail", "PutEventSelectors",
     selectors(dataResources=[{"type": "AWS::S3::Object"}])),
    ("cloudtrail-management-events-dropped", "cloudtrail", "PutEventSelectors",
     advanced({"field": "eventCategory", "equals": ["Management"]})),
    ("s3-access-logging-disabled", "s3", "PutBucketLogging",
     {"bucketName": "web", "BucketLoggingStatus": {
         "LoggingEnabled": {"TargetBucket": "logs", "TargetPrefix": "web/"}}}),
    ("log-retention-shortened", "logs", "PutRetentionPolicy",
     {"logGroupName": "/aws/cloudtrail", "retentionInDays": 14}),
    ("log-retention-shortened", "logs", "PutRetentionPolicy",
     {"logGroupName": "/aws/cloudtrail", "retentionInDays": 3653}),
    ("s3-lifecycle-expiration", "s3", "PutBucketLifecycle",
     lifecycle({"ID": "archive", "Status": "Enabled", "Transition": {"Days": 30}})),
    ("s3-lifecycle-expiration", "s3", "PutBucketLifecycle",
     lifecycle({"ID": "off", "Status": "Disabled", "Expiration": {"Days": 1}})),
    # Removing delete markers whose versions are already gone deletes no data.
    ("s3-lifecycle-expiration", "s3", "PutBucketLifecycleConfiguration",
     lifecycle({"ID": "tidy", "Status": "Enabled",
                "Expiration": {"ExpiredObjectDeleteMarker": True},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}})),
    ("s3-versioning-suspended", "s3", "PutBucketVersioning",
     {"bucketName": "audit", "VersioningConfiguration": {"Status": "Enabled"}}),
    ("rds-backups-disabled", "rds", "ModifyDBInstance",
     {"dBInstanceIdentifier": "orders", "backupRetentionPeriod": 7}),
    ("route53-record-deleted", "route53", "ChangeResourceRecordSets", record_change("UPSERT")),
    ("secret-deleted-without-recovery", "secretsmanager", "DeleteSecret",
     {"secretId": "prod/db", "recoveryWindowInDays": 7}),
    ("lambda-layer-added", "lambda", "UpdateFunctionConfiguration20150331v2",
     {"functionName": "f", "memorySize": 512}),
    ("lambda-layer-added", "lambda", "UpdateFunctionConfiguration20150331v2",
     {"functionName": "f", "layers": []}),
    ("role-trust-opened", "iam", "CreateRole",
     {"roleName": "fn", "assumeRolePolicyDocument": as_text(
         policy({"Service": "lambda.amazonaws.com"}))}),
    ("role-trust-opened", "iam", "UpdateAssumeRolePolicy",
     {"roleName": "ops", "policyDocument": as_text(OWN_ROOT)}),
    ("role-trust-opened", "iam", "CreateRole",
     {"roleName": "vendor", "assumeRolePolicyDocument": as_text(
         policy({"AWS": "*"}, condition={"StringEquals": {"sts:ExternalId": "x-1"}}))}),
    ("admin-policy-granted", "iam", "AttachRolePolicy",
     {"roleName": "ops", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
    ("admin-policy-granted", "iam", "PutRolePolicy",
     {"roleName": "ops", "policyName": "p", "policyDocument": as_text(DESCRIBE_ONLY)}),
    ("ec2-user-data-read", "ec2", "DescribeInstanceAttribute",
     {"instanceId": "i-0aa", "attribute": "instanceInitiatedShutdownBehavior"}),
    ("ssm-parameter-decrypted", "ssm", "GetParameters",
     {"names": ["/prod/db/host"], "withDecryption": False}),
    ("ssm-parameter-decrypted", "ssm", "GetParameter", {"name": "/prod/db/host"}),
    ("public-resource-policy", "es", "UpdateDomainConfig",
     {"domainName": "logs", "accessPolicies": as_text(
         policy({"AWS": "*"}, condition={"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}))}),
    ("public-resource-policy", "es", "UpdateDomainConfig",
     {"domainName": "logs", "clusterConfig": {"instanceCount": 3}}),
    ("public-resource-policy", "elasticfilesystem", "PutFileSystemPolicy",
     {"fileSystemId": "fs-01", "policy": as_text(OWN_ROOT)}),
    ("public-resource-policy", "ecr", "PutRegistryPolicy", {"policyText": as_text(OWN_ROOT)}),
    ("public-resource-policy", "cloudtrail", "PutResourcePolicy",
     {"resourceArn": "c", "resourcePolicy": as_text(CLOUDTRAIL_DELIVERY)}),
    ("public-api-policy", "apigateway", "CreateRestApi",
     {"name": "orders", "policy": as_text(policy(
         "*", condition={"StringEquals": {"aws:SourceVpce": "vpce-0abc"}}))}),
    ("public-api-policy", "apigateway", "UpdateRestApi",
     {"restApiId": "a1b2c3", "patchOperations": [
         {"op": "replace", "path": "/description", "value": as_text(PUBLIC)}]}),
    ("foreign-account-permission", "sns", "AddPermission",
     {"topicArn": "t", "label": "x", "aWSAccountId": [OWN], "actionName": ["Publish"]}),
    ("public-access-point", "s3", "PutAccessPointPolicy",
     {"name": "reports-ap", "PutAccessPointPolicyRequest": {"Policy": as_text(OWN_ROOT)}}),
    ("public-access-point", "s3", "CreateAccessPoint",
     {"name": "reports-ap", "CreateAccessPointRequest": {
         "Bucket": "reports", "VpcConfiguration": {"VpcId": "vpc-1"}}}),
    ("public-function-url", "lambda", "CreateFunctionUrlConfig20211031",
     {"functionName": "export", "authType": "AWS_IAM"}),
    ("kms-grant-to-foreign-account", "kms", "CreateGrant",
     {"keyId": "k-1", "granteePrincipal": f"arn:aws:iam::{OWN}:role/app",
      "operations": ["Decrypt"]}),
    ("findings-suppressed", "securityhub", "BatchUpdateFindings",
     {"findingIdentifiers": [{"id": "f-1", "productArn": "p"}],
      "workflow": {"status": "NOTIFIED"}}),
    ("findings-suppressed", "securityhub", "UpdateFindings",
     {"filters": {}, "note": {"text": "seen", "updatedBy": "x"}, "recordState": "ACTIVE"}),
    ("findings-suppressed", "access-analyzer", "UpdateFindings",
     {"analyzerArn": "a", "ids": ["f-1"], "status": "ACTIVE"}),
    ("findings-suppressed", "guardduty", "ArchiveFindings",
     {"detectorId": "d-1", "findingIds": []}),
    ("macie-job-cancelled", "macie2", "UpdateClassificationJob",
     {"jobId": "j-1", "jobStatus": "RUNNING"}),
    ("guardduty-disabled", "guardduty", "UpdateDetector",
     {"detectorId": "d-1", "features": [{"name": "S3_DATA_EVENTS", "status": "ENABLED"}]}),
    ("model-invocation-logging-removed", "bedrock", "PutModelInvocationLoggingConfiguration",
     {"loggingConfig": {"s3Config": {"bucketName": "llm-logs"}, "textDataDeliveryEnabled": True}}),
]  # fmt: skip


def _id(case: tuple[Any, ...]) -> str:
    return f"{case[0]}:{case[2]}"


@pytest.mark.parametrize("case", FIRES, ids=[_id(c) for c in FIRES])
def test_rule_fires_on_the_risky_form(case: tuple[Any, ...]) -> None:
    rule, service, name, params, category, tier, mention = case
    evt = event(service, name, params)
    action, fired = fired_rules(evt)
    assert rule in fired
    classification = CATALOG.classify(evt, action)
    assert (classification.category, classification.tier) == (category, tier)
    assert any(mention in reason for reason in classification.reasons), classification.reasons


@pytest.mark.parametrize("case", QUIET, ids=[_id(c) for c in QUIET])
def test_rule_stays_quiet_on_the_routine_form(case: tuple[Any, ...]) -> None:
    rule, service, name, params = case
    evt = event(service, name, params)
    action, fired = fired_rules(evt)
    # The rule reads this action, so staying quiet is a decision, not a miss.
    assert rule in {r.name for r in CATALOG.param_rules.rules_for(action)}
    assert fired == set()
    classification = CATALOG.classify(evt, action)
    assert classification.reasons == ()
    entry = classification.entry
    assert (classification.category, classification.tier) == (entry.category, entry.tier)


def test_every_registered_rule_has_firing_and_quiet_cases() -> None:
    registered = {rule.name for rule in default_param_rules()}
    assert registered - {case[0] for case in FIRES} == set()
    assert registered - {case[0] for case in QUIET} == set()
    # And no case names a rule that no longer exists.
    assert {case[0] for case in (*FIRES, *QUIET)} - registered == set()


@pytest.mark.parametrize("rule", list(default_param_rules()), ids=lambda r: r.name)
def test_every_action_a_rule_reads_is_an_iam_action(rule: ParamRule) -> None:
    # Rules are looked up by catalogue entry; a misspelt action would never be evaluated.
    unknown = [a for a in sorted(rule.actions) if not CATALOG.entry(a).known]
    assert unknown == []


# --- how classification uses hits ------------------------------------------------------------


def test_all_reasons_are_kept_and_the_worst_hit_decides() -> None:
    evt = event(
        "rds",
        "ModifyDBInstance",
        {"dBInstanceIdentifier": "orders", "publiclyAccessible": True, "backupRetentionPeriod": 0},
    )
    classification = CATALOG.classify(evt, "rds:ModifyDBInstance")
    assert len(classification.reasons) == 2
    # Both rules are tier 1; the first registered breaks the tie.
    assert (classification.category, classification.tier) == (Category.DATA_EXPOSURE, 1)


def test_a_hit_never_lowers_the_entry(tmp_path: Path) -> None:
    override = tmp_path / "ours.yaml"
    override.write_text(
        "rules:\n  - actions: [ec2:DescribeInstanceAttribute]\n    category: destroy\n    tier: 0\n"
    )
    catalog = load_catalog([override])
    evt = event("ec2", "DescribeInstanceAttribute", {"instanceId": "i-1", "attribute": "userData"})
    classification = catalog.classify(evt, "ec2:DescribeInstanceAttribute")
    # The user-data rule (tier 2) fires, but the entry already says tier 0.
    assert (classification.category, classification.tier) == (Category.DESTROY, 0)
    assert classification.reasons == ("user data of instance i-1 read",)


# --- robustness ------------------------------------------------------------------------------

_ODD_VALUES: list[Any] = [None, True, 0, -1, "", "x", "{not json", [], [None, 3], {"items": 7}]
_KEYS = sorted(
    {
        "bucketPolicy", "attributes", "policy", "policyText", "resourcePolicy", "attributeName",
        "attributeValue", "principal", "x-amz-acl", "PublicAccessBlockConfiguration",
        "launchPermission", "createVolumePermission", "valuesToAdd", "ipPermissions", "cidrIp",
        "egress", "ruleAction", "cidrBlock", "publiclyAccessible", "status", "enable",
        "advancedEventSelectors", "eventSelectors", "BucketLoggingStatus", "retentionInDays",
        "LifecycleConfiguration", "VersioningConfiguration", "backupRetentionPeriod",
        "changeBatch", "forceDeleteWithoutRecovery", "layers", "assumeRolePolicyDocument",
        "policyDocument", "policyArn", "attribute", "withDecryption", "accessPolicies",
        "patchOperations", "AWSAccountIds", "AWSAccountId", "authType", "granteePrincipal",
        "retiringPrincipal", "workflow", "recordState", "findingIds", "jobStatus",
        "loggingConfig", "features", "dataSources", "PutAccessPointPolicyRequest",
        "PublicAccessBlock",
    }
)  # fmt: skip


@pytest.mark.parametrize("value", _ODD_VALUES, ids=repr)
def test_rules_never_raise_on_odd_shapes(value: Any) -> None:
    registry = default_param_rules()
    for params in ({key: value for key in _KEYS}, "HIDDEN_DUE_TO_SECURITY_REASONS", None):
        for rule in registry:
            for action in rule.actions:
                service, name = CATALOG.entry(action).action.split(":")
                evt = event(service, name, params)
                rule.check(evt)  # must not raise


# --- registry --------------------------------------------------------------------------------


def test_registry_refuses_duplicate_and_badly_named_rules() -> None:
    rule = next(iter(default_param_rules()))
    with pytest.raises(ValueError, match="already registered"):
        ParamRuleRegistry([rule, rule])
    with pytest.raises(ValueError, match="kebab-case"):
        ParamRuleRegistry([ParamRule(**{**_fields(rule), "name": "Not_Kebab"})])


def test_default_registry_is_fresh_each_time() -> None:
    assert default_param_rules() is not default_param_rules()
    assert len(default_param_rules()) == len(list(default_param_rules()))


def _fields(rule: ParamRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "actions": rule.actions,
        "category": rule.category,
        "tier": rule.tier,
        "summary": rule.summary,
        "check": rule.check,
    }
