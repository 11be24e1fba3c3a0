"""A task's credentials as the agent's tools read them: shell exports, AWS CLI
`credential_process` JSON, a named profile in the AWS config file, or the environment of a
child process that keeps nothing of the caller's AWS setup."""

from __future__ import annotations

import configparser
import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from detector.state.tasks import TaskRow
from detector.tasks.mint import Credentials
from detector.tasks.settings import TaskSettings

TASK_VARIABLE = "TRAILGUARD_TASK"
# What the pre-flight gate reads in a hook started inside `task exec`; a caller's own values
# of these would describe another task.
GATE_VARIABLES = (
    "TRAILGUARD_SCOPES",
    "TRAILGUARD_SCOPE",
    "TRAILGUARD_STATE",
    "TRAILGUARD_AGENT",
    "TRAILGUARD_OWNER",
    "TRAILGUARD_SESSION",
)


def credential_variables(
    row: TaskRow, credentials: Credentials, settings: TaskSettings
) -> dict[str, str]:
    variables = {
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_SESSION_TOKEN": credentials.session_token,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        TASK_VARIABLE: row.task_id,
    }
    if settings.endpoint_url is not None:
        # Only set when the config points STS elsewhere (tests, private endpoints): the SDKs
        # and the AWS CLI then send every call there too.
        variables["AWS_ENDPOINT_URL"] = settings.endpoint_url
    return variables


def env_exports(row: TaskRow, credentials: Credentials, settings: TaskSettings) -> str:
    variables = credential_variables(row, credentials, settings)
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items())


def credential_process(credentials: Credentials) -> str:
    """The JSON the AWS CLI and SDKs expect from a `credential_process` command."""
    return json.dumps(
        {
            "Version": 1,
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key,
            "SessionToken": credentials.session_token,
            "Expiration": credentials.expiration.isoformat().replace("+00:00", "Z"),
        }
    )


def write_profile(
    path: Path, name: str, row: TaskRow, credentials: Credentials, settings: TaskSettings
) -> None:
    """Add or replace `[profile NAME]` in the AWS config file at `path` (created 0600)."""
    config = configparser.RawConfigParser()
    if path.exists():
        config.read(path, encoding="utf-8")
    section = "default" if name == "default" else f"profile {name}"
    if config.has_section(section):
        config.remove_section(section)
    config.add_section(section)
    config.set(section, "aws_access_key_id", credentials.access_key_id)
    config.set(section, "aws_secret_access_key", credentials.secret_access_key)
    config.set(section, "aws_session_token", credentials.session_token)
    config.set(section, "region", settings.region)
    config.set(section, "trailguard_task", row.task_id)
    if settings.endpoint_url is not None:
        config.set(section, "endpoint_url", settings.endpoint_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        config.write(handle)


def child_environment(
    caller: Mapping[str, str], row: TaskRow, credentials: Credentials, settings: TaskSettings
) -> dict[str, str]:
    """The caller's environment without any AWS_* variable, plus the task's credentials.

    The shared config and credentials files are pointed at the null device so the child
    cannot fall back on the caller's profiles either."""
    env = {k: v for k, v in caller.items() if not k.upper().startswith("AWS_")}
    env.update(credential_variables(row, credentials, settings))
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def gate_variables(
    row: TaskRow, *, scopes: Path | None, state: Path | None, service_url: str | None
) -> dict[str, str]:
    """What a `trailguard-gate` hook run by the child needs to check calls against the task
    with no options of its own: the scope file and the scope, the task registry's file (an
    embedded store) and the service, who the agent is and whom it acts for."""
    variables = {"TRAILGUARD_SCOPE": row.scope, "TRAILGUARD_AGENT": row.agent}
    if scopes is not None:
        variables["TRAILGUARD_SCOPES"] = str(scopes.resolve())
    if state is not None:
        variables["TRAILGUARD_STATE"] = str(state.resolve())
    if row.owner:
        variables["TRAILGUARD_OWNER"] = row.owner
    if service_url:
        variables["TRAILGUARD_URL"] = service_url
    return variables
