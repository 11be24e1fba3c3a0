"""`trailguard task start | list | end | exec`: scoped credentials for one agent task.

`start` assumes the task's role with a session policy generated from its scope, a source
identity `agent-<agent>-<task id>` and session tags, registers the task in the state store the
service reads (same `--config`), and prints the credentials. `exec` does the same, runs a
command with only those credentials, ends the task when the command exits and returns its
exit code.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand
from detector.errors import ConfigError

START_EPILOG = exit_codes(
    "0  the task is registered and its credentials printed",
    "1  STS refused or failed (nothing registered); the state store is down",
    CONFIG_ERROR_LINE + "; no such scope; a policy too large for a session policy",
)
EXEC_EPILOG = exit_codes(
    "N  the command's own exit code (128+signal when a signal ended it)",
    "1  STS refused or failed (the command did not run)",
    CONFIG_ERROR_LINE + "; 127 the command was not found",
)
OTHER_EPILOG = exit_codes("0  done", "1  no such task; the state store is down", CONFIG_ERROR_LINE)
_DURATION = re.compile(r"(\d+)([smh]?)")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    task = subcommand(
        commands,
        "task",
        help="mint scoped credentials for an agent task, list and end tasks",
        epilog=OTHER_EPILOG,
    )
    sub = task.add_subparsers(metavar="SUBCOMMAND")
    start = subcommand(
        sub, "start", help="start a task and print its credentials", epilog=START_EPILOG
    )
    _minting(start)
    start.add_argument(
        "--format",
        choices=("env", "credential-process", "profile"),
        default="env",
        help="shell exports (default), credential_process JSON, or a profile in the AWS "
        "config file (with --profile-name)",
    )
    start.add_argument("--profile-name", metavar="N", help="profile to write with --format profile")
    start.set_defaults(handler=_start)
    listing = subcommand(sub, "list", help="list tasks, newest first", epilog=OTHER_EPILOG)
    listing.add_argument("--config", type=Path, help="configuration file")
    listing.add_argument("--status", choices=("active", "ended", "all"), default="all")
    listing.add_argument("--format", choices=("table", "jsonl"), default="table")
    listing.set_defaults(handler=_list)
    end = subcommand(
        sub, "end", help="end a task: later use of its credentials is flagged", epilog=OTHER_EPILOG
    )
    end.add_argument("task_id", metavar="ID")
    end.add_argument("--config", type=Path, help="configuration file")
    end.set_defaults(handler=_end)
    run = subcommand(
        sub, "exec", help="run a command as a task, with only its credentials", epilog=EXEC_EPILOG
    )
    _minting(run)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    run.set_defaults(handler=_exec)


def _minting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", required=True, metavar="NAME", help="the task's scope")
    parser.add_argument("--agent", required=True, metavar="NAME", help="the agent, e.g. kiro")
    parser.add_argument("--role", metavar="ARN", help="role to assume (default: tasks.role_arn)")
    parser.add_argument(
        "--duration", type=_duration, metavar="D", help="credential lifetime: 900s, 30m, 1h"
    )
    parser.add_argument("--owner", metavar="EMAIL", help="the person the task is done for")
    parser.add_argument("--scopes", type=Path, help="task scope file (overrides the config)")
    parser.add_argument("--config", type=Path, help="configuration file")


def _duration(text: str) -> timedelta:
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 900s, 30m or 1h, got {text!r}"
        )
    unit = {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]
    return timedelta(seconds=int(found.group(1)) * unit)


def _mint(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from detector.catalog_loader import load_catalog
    from detector.cli import _settings
    from detector.core.scope_policy import PolicyTooLarge
    from detector.run import open_store
    from detector.tasks.mint import start_task
    from detector.tasks.policy import scope_session_policy
    from detector.tasks.settings import task_settings
    from detector.wiring import scope_set

    settings = _settings(args.config)
    own = task_settings(settings)
    scopes = scope_set(settings, args.scopes)
    scope = scopes.get(args.scope)
    if scope is None:
        names = ", ".join(s.name for s in scopes.scopes) or "none"
        raise ConfigError(f"no scope {args.scope!r} (scopes: {names})")
    role = args.role or own.role_arn
    if role is None:
        raise ConfigError("no role to assume: give --role ARN or set tasks.role_arn")
    try:
        policy = scope_session_policy(scope, load_catalog(settings.catalog.overrides))
    except PolicyTooLarge as exc:
        raise ConfigError(str(exc)) from None
    duration = args.duration or timedelta(seconds=own.duration_seconds)
    store = open_store(settings)
    try:
        row, credentials = start_task(
            store=store,
            settings=own,
            scope=scope.name,
            policy=policy,
            agent=args.agent,
            role_arn=role,
            owner=args.owner,
            duration=duration,
            now=datetime.now(UTC),
        )
    finally:
        store.close()
    return row, credentials, own


def _start(args: argparse.Namespace) -> int:
    from detector.tasks.output import credential_process, env_exports, write_profile

    if args.format == "profile" and not args.profile_name:
        raise ConfigError("--format profile needs --profile-name N")
    row, credentials, own = _mint(args)
    if args.format == "env":
        sys.stdout.write(env_exports(row, credentials, own))
    elif args.format == "credential-process":
        print(credential_process(credentials))
    else:
        # The same file the AWS CLI reads; AWS_CONFIG_FILE moves it, as for the CLI.
        path = Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config")
        write_profile(path, args.profile_name, row, credentials, own)
        print(f"task {row.task_id}: profile {args.profile_name} written to {path}")
    print(
        f"trailguard: task {row.task_id} started ({row.source_identity}, expires "
        f"{row.to_dict()['expires_at']})",
        file=sys.stderr,
    )
    return 0


def _exec(args: argparse.Namespace) -> int:
    from detector.cli import _settings
    from detector.run import open_store
    from detector.tasks.output import GATE_VARIABLES, child_environment, gate_variables

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ConfigError("task exec needs a command after --")
    row, credentials, own = _mint(args)
    settings = _settings(args.config)
    try:
        env = child_environment(os.environ, row, credentials, own)
        for name in GATE_VARIABLES:
            env.pop(name, None)
        env.update(
            gate_variables(
                row,
                scopes=args.scopes or settings.scopes,
                # The gate reads an embedded store's registry itself; a shared one it asks
                # the service about.
                state=Path(settings.state.path) if settings.state.store == "sqlite" else None,
                service_url=os.environ.get("TRAILGUARD_URL") or settings.http.public_url,
            )
        )
        # Running the caller's own command line is the point of `task exec`.
        done = subprocess.run(argv, env=env, check=False)  # noqa: S603
        code = done.returncode if done.returncode >= 0 else 128 - done.returncode
    except FileNotFoundError:
        print(f"trailguard: {argv[0]}: command not found", file=sys.stderr)
        code = 127
    finally:
        store = open_store(settings)
        try:
            store.end_task(row.task_id, at=datetime.now(UTC))
        finally:
            store.close()
    return code


def _list(args: argparse.Namespace) -> int:
    import json

    from detector.cli import _settings
    from detector.run import open_store

    store = open_store(_settings(args.config))
    try:
        rows = store.tasks(status=None if args.status == "all" else args.status)
    finally:
        store.close()
    if args.format == "jsonl":
        for row in rows:
            print(json.dumps(row.to_dict()))
        return 0
    print(f"{'TASK':<14}{'AGENT':<10}{'SCOPE':<22}{'STATUS':<8}{'EXPIRES':<22}OWNER")
    for row in rows:
        expires = str(row.to_dict()["expires_at"])[:19] + "Z"
        print(
            f"{row.task_id:<14}{row.agent:<10}{row.scope:<22}{row.status:<8}{expires:<22}"
            f"{row.owner or '-'}"
        )
    return 0


def _end(args: argparse.Namespace) -> int:
    from detector.cli import _settings
    from detector.run import open_store

    store = open_store(_settings(args.config))
    try:
        row = store.end_task(args.task_id, at=datetime.now(UTC))
    finally:
        store.close()
    if row is None:
        print(f"trailguard: no task {args.task_id!r}", file=sys.stderr)
        return 1
    print(f"task {row.task_id} ended at {row.to_dict()['ended_at']}")
    return 0
