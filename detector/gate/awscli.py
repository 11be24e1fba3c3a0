"""One `aws ...` command line → the IAM actions, resources and region of the call it makes.

Service and operation come from the botocore index (`cli_index`), the IAM actions from the
project's action resolution (`detector.core.actions`), as for a CloudTrail event of that
operation, and the resource ARNs from the project's resource extraction applied to the
command's parameters written as CloudTrail writes requestParameters (`--stack-name` is
`stackName`). Global options (`--region`, `--profile`, `--endpoint-url`, ...) may appear
anywhere, as the CLI allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from detector.core.actions import resolve_actions
from detector.core.events import Actor, CloudTrailEvent
from detector.core.resources import extract_resources, partition_for
from detector.gate import s3_commands
from detector.gate.aws_config import AwsProfile
from detector.gate.cli_index import CLI_RENAMES, ServiceOperations
from detector.gate.shell import Word

Lookup = Callable[[str], ServiceOperations | None]

GLOBAL_VALUED = frozenset({"--region", "--profile", "--endpoint-url", "--output", "--query",
                           "--color", "--ca-bundle", "--cli-read-timeout",
                           "--cli-connect-timeout", "--cli-binary-format"})  # fmt: skip
GLOBAL_FLAGS = frozenset({"--debug", "--no-verify-ssl", "--no-paginate", "--no-sign-request",
                          "--no-cli-pager", "--cli-auto-prompt",
                          "--no-cli-auto-prompt"})  # fmt: skip
# CLI commands that make no AWS call, or none an IAM policy authorises.
LOCAL_COMMANDS = frozenset({"configure", "help", "history", "cli-dev", "--version", "login",
                            "logout"})  # fmt: skip
# Operations IAM never refuses, so no scope can be asked about them.
NO_PERMISSION = frozenset({("sts", "get-caller-identity")})
# The CLI's own commands that are not API operations: (service, command) → IAM actions.
CUSTOM_COMMANDS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("eks", "update-kubeconfig"): ("eks:DescribeCluster",),
    ("eks", "get-token"): ("sts:GetCallerIdentity",),
    ("ecr", "get-login-password"): ("ecr:GetAuthorizationToken",),
    ("ecr", "get-login"): ("ecr:GetAuthorizationToken",),
    ("cloudformation", "deploy"): (
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeChangeSet",
    ),
    ("cloudformation", "package"): ("s3:PutObject",),
    ("codeartifact", "login"): ("codeartifact:GetAuthorizationToken", "sts:GetServiceBearerToken"),
    ("rds", "generate-db-auth-token"): ("rds-db:connect",),
    ("deploy", "push"): ("s3:PutObject", "codedeploy:RegisterApplicationRevision"),
    ("logs", "tail"): ("logs:FilterLogEvents", "logs:StartLiveTail"),
    ("ddb", "select"): ("dynamodb:Scan", "dynamodb:Query"),
    ("ddb", "put"): ("dynamodb:PutItem", "dynamodb:BatchWriteItem"),
    ("sso", "login"): (),
    ("sso", "logout"): (),
}
# Parameters whose CloudTrail name is not the plain lowerCamel of the option.
PARAMETER_NAMES: Mapping[str, str] = {"bucket": "bucketName", "cluster-name": "clusterName"}
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsCall:
    """What one `aws` command line would do.

    actions            IAM actions; () for a command that calls nothing (`aws configure`)
    known              False when the service or operation is unknown (see `problem`)
    unknown_resources  some parameter (or an xargs-appended argument) is only known at run
                       time, so the resources listed may not be all the call touches
    """

    command: str
    service: str = ""
    operation: str = ""
    actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    region: str = ""
    region_dynamic: bool = False
    account: str = ""
    profile: str | None = None
    endpoint_url: str | None = None
    known: bool = True
    problem: str | None = None
    unknown_resources: bool = False
    local: bool = False


def parse_call(
    words: Sequence[Word],
    *,
    env: Mapping[str, str],
    lookup: Lookup,
    account: str,
    at: datetime,
    appended: bool = False,
    default_account: str = "",
    profiles: Mapping[str, AwsProfile] | None = None,
) -> AwsCall:
    """The call of `aws <words[1:]>`; `env` is the environment the command runs with.

    The account is `account` when given, else the profile's, else `default_account`; the
    region is the CLI's: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's region.
    """
    command = " ".join(w.value for w in words)
    options: dict[str, list[Word]] = {}
    positional: list[Word] = []
    index = 1
    while index < len(words):
        word = words[index]
        value = word.value
        index += 1
        is_s3 = bool(positional) and positional[0].value == "s3"
        if value.startswith("--") and len(value) > 2:
            name, sep, inline = value.partition("=")
            values: list[Word] = []
            if sep:
                values.append(Word(value=inline, dynamic=word.dynamic))
            elif name in GLOBAL_FLAGS or (is_s3 and name in s3_commands.S3_FLAGS):
                pass
            else:
                while index < len(words) and not (
                    words[index].value.startswith("--") and len(words[index].value) > 2
                ):
                    values.append(words[index])
                    index += 1
                    if name in GLOBAL_VALUED or len(positional) < 2 or is_s3:
                        break
            options.setdefault(name, []).extend(values)
        else:
            positional.append(word)
    region_word = _first(options.get("--region"))
    profile_word = _first(options.get("--profile"))
    endpoint_word = _first(options.get("--endpoint-url"))
    endpoint = endpoint_word.value if endpoint_word else None
    profile = profile_word.value if profile_word else env.get("AWS_PROFILE")
    configured = (profiles or {}).get(profile or "default", AwsProfile())
    account = account or configured.account or default_account
    region = (
        region_word.value
        if region_word
        else env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or configured.region
    )
    if not region and endpoint:
        region = next(iter(REGION.findall(endpoint)), "")
    base = AwsCall(
        command=command,
        region=region,
        region_dynamic=bool(region_word and region_word.dynamic),
        account=account,
        profile=profile,
        endpoint_url=endpoint,
    )
    if "--version" in options or "--help" in options or not positional:
        return replace(base, local=True)  # prints usage or help; calls nothing
    if positional[0].value in LOCAL_COMMANDS:
        return replace(base, local=True)
    if any(w.dynamic for w in positional[:2]):
        return replace(
            base, known=False, problem="the service or operation is computed at run time"
        )
    service = positional[0].value
    operation = positional[1].value if len(positional) > 1 else ""
    if operation in ("help", "") or "help" in (w.value for w in positional[2:]):
        return replace(base, service=service, local=True)
    dynamic = appended or any(w.dynamic for ws in options.values() for w in ws)
    dynamic = dynamic or any(w.dynamic for w in positional[2:])
    # Parameters read from a file are not on the line.
    dynamic = dynamic or "--cli-input-json" in options or "--cli-input-yaml" in options
    partition = partition_for(region)
    if service == "s3":
        paths = [w.value for w in positional[2:]]
        plan = s3_commands.plan(operation, paths, frozenset(options), partition=partition)
        if plan is None:
            return replace(
                base,
                service=service,
                operation=operation,
                known=False,
                problem=f"aws s3 has no command {operation!r}",
            )
        return replace(
            base,
            service=service,
            operation=operation,
            actions=plan.actions,
            resources=plan.resources,
            unknown_resources=dynamic,
        )
    if operation == "wait" or (service, operation) in NO_PERMISSION:
        # Waiters poll a Describe/Get operation until a state is reached: reads only.
        # GetCallerIdentity needs no permission: IAM cannot deny it.
        return replace(base, service=service, operation=operation, local=True)
    custom = CUSTOM_COMMANDS.get((service, operation))
    if custom is not None:
        return replace(
            base, service=service, operation=operation, actions=custom, unknown_resources=dynamic
        )
    model = lookup(service)
    if model is None:
        return replace(
            base,
            service=service,
            operation=operation,
            known=False,
            problem=f"no AWS CLI service {service!r} in botocore's models",
        )
    api_name = model.operations.get(operation)
    if api_name is None:
        return replace(
            base,
            service=service,
            operation=operation,
            known=False,
            problem=f"aws {service} has no operation {operation!r} in botocore's models",
        )
    actions = resolve_actions(model.event_source, api_name)
    if operation in model.outfile:
        _drop_outfile(words, options)
    params = {
        _parameter_name(name): [w.value for w in ws] if len(ws) > 1 else ws[0].value
        for name, ws in options.items()
        if ws and name not in GLOBAL_VALUED
    }
    event = CloudTrailEvent(
        event_id="gate",
        event_time=at,
        event_source=model.event_source,
        event_name=api_name,
        aws_region=region,
        recipient_account_id=account or None,
        actor=Actor(type="AssumedRole", account_id=account or None),
        request_parameters=params,
    )
    return replace(
        base,
        service=CLI_RENAMES.get(service, service),
        operation=api_name,
        actions=actions,
        resources=extract_resources(event),
        unknown_resources=dynamic,
    )


def _drop_outfile(words: Sequence[Word], options: dict[str, list[Word]]) -> None:
    """The last word of a streaming operation names its output file, not a parameter value."""
    last = words[-1]
    for values in options.values():
        if values and values[-1] is last and len(values) > 1:
            values.pop()
            return


def _first(words: list[Word] | None) -> Word | None:
    return words[0] if words else None


def _parameter_name(option: str) -> str:
    """`--stack-name` → `stackName`, `--db-cluster-identifier` → `dBClusterIdentifier`."""
    name = option[2:]
    if name in PARAMETER_NAMES:
        return PARAMETER_NAMES[name]
    head, *rest = name.split("-")
    camel = "".join(part[:1].upper() + part[1:] for part in rest)
    if head == "db":
        return "dB" + camel  # the API's DBClusterIdentifier, first letter lowered
    return head + camel
