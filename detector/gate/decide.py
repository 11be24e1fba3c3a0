"""The gate's decision: a command line and a task scope → allow or block, with reasons.

Pure: the environment, the time and the operation index come in as arguments. Every AWS
CLI call and infrastructure-tool destroy in the line is checked with the scope engine the
detector uses (`Scope.evaluate`); one call out of scope blocks the whole line, and so does
anything the gate cannot read. Commands that are neither pass: they are not AWS calls.

The AWS CLI reader and the scope engine are imported when a line holds an AWS call: most
lines an agent runs hold none, and the gate starts for every one of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from detector.gate import iac
from detector.gate.shell import ShellSyntaxError
from detector.gate.unwrap import Invocation, invocations, program_name

if TYPE_CHECKING:
    from detector.core.scope import Scope
    from detector.gate.aws_config import AwsProfile
    from detector.gate.awscli import AwsCall, Lookup

Decision = Literal["allow", "block"]
AWS_PROGRAMS = frozenset({"aws", "aws2"})
_DELETE_VERBS = ("delete", "terminate", "remove", "destroy")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedCall:
    """One call the line would make, and what the gate made of it.

    kind   "aws" (an AWS CLI call), "tool" (an infrastructure tool) or "shell" (commands
           the gate cannot see)
    """

    kind: str
    command: str
    decision: Decision
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    region: str = ""
    profile: str | None = None
    endpoint_url: str | None = None
    via: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "kind": self.kind,
            "command": self.command,
            "decision": self.decision,
            "actions": list(self.actions),
            "resources": list(self.resources),
            "region": self.region,
        }
        optional = {"profile": self.profile, "endpoint_url": self.endpoint_url}
        record.update({key: value for key, value in optional.items() if value is not None})
        if self.via:
            record["via"] = list(self.via)
        if self.reasons:
            record["reasons"] = list(self.reasons)
        if self.notes:
            record["notes"] = list(self.notes)
        return record


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The answer for one command line (or one tool call that holds no command)."""

    decision: Decision
    reason: str
    scope: str | None = None
    calls: tuple[CheckedCall, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def blocked(self) -> bool:
        return self.decision == "block"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "scope": self.scope,
            "calls": [call.to_dict() for call in self.calls],
            "notes": list(self.notes),
        }


def allow(reason: str, *, scope: str | None = None) -> Verdict:
    return Verdict(decision="allow", reason=reason, scope=scope)


def block(reason: str, *, scope: str | None = None) -> Verdict:
    return Verdict(decision="block", reason=reason, scope=scope)


def decide(
    line: str,
    *,
    scope: Scope | None,
    env: Mapping[str, str],
    at: datetime,
    lookup: Lookup,
    account: str | None = None,
    profiles: Mapping[str, AwsProfile] | None = None,
) -> Verdict:
    """Check every AWS call and infrastructure-tool destroy in the command line.

    `account` is the account the credentials act in, when known; else an AWS CLI call's
    profile (from `profiles`, the CLI config) or the scope's single allowed account says.
    """
    name = scope.name if scope is not None else None
    try:
        runs = invocations(line)
    except ShellSyntaxError as exc:
        return block(f"the gate cannot parse this command line ({exc})", scope=name)
    fallback = _single_account(scope) if scope is not None else ""
    context = _Context(env=env, at=at, lookup=lookup, account=account or "",
                       default_account=fallback, profiles=profiles or {})  # fmt: skip
    calls: list[CheckedCall] = []
    for run in runs:
        checked = _check(run, scope=scope, context=context)
        if checked is not None:
            calls.append(checked)
    return _verdict(calls, scope)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Context:
    env: Mapping[str, str]
    at: datetime
    lookup: Lookup
    account: str
    default_account: str
    profiles: Mapping[str, AwsProfile]


def _check(run: Invocation, *, scope: Scope | None, context: _Context) -> CheckedCall | None:
    program = run.program
    command = " ".join(run.argv)
    if run.hidden is not None:
        if run.stdin:
            return CheckedCall(kind="shell", command=command, decision="block",
                               reasons=(run.hidden,), via=run.via)  # fmt: skip
        return CheckedCall(kind="shell", command=command, decision="allow",
                           notes=(run.hidden,), via=run.via)  # fmt: skip
    words = run.words
    if program.startswith("python") and [w.value for w in words[1:3]] == ["-m", "awscli"]:
        words, program = words[2:], "aws"
    if run.words[0].dynamic and ("$" in program or not program):
        return CheckedCall(
            kind="shell",
            command=command,
            decision="block",
            reasons=(f"the program {run.words[0].value!r} is only known at run time",),
            via=run.via,
        )
    merged = {**context.env, **dict(run.env)}
    if program in AWS_PROGRAMS:
        from detector.gate.awscli import parse_call

        call = parse_call(
            words,
            env=merged,
            lookup=context.lookup,
            account=context.account,
            at=context.at,
            appended=run.appended,
            default_account=context.default_account,
            profiles=context.profiles,
        )
        return _check_aws(call, scope, context.at, run.via)
    tool = iac.tool_name(program)
    if tool is not None:
        region = merged.get("AWS_REGION") or merged.get("AWS_DEFAULT_REGION", "")
        use = iac.classify(tool, run.argv, region=region)
        account = context.account or context.default_account
        return _check_tool(use, scope, account, context.at, run.via)
    return None


def _check_aws(
    call: AwsCall, scope: Scope | None, at: datetime, via: tuple[str, ...]
) -> CheckedCall:
    from detector.core.scope import global_only

    base = CheckedCall(
        kind="aws",
        command=call.command,
        decision="allow",
        actions=call.actions,
        resources=call.resources,
        region=call.region,
        profile=call.profile,
        endpoint_url=call.endpoint_url,
        via=via,
    )
    if call.local:
        return _with(base, notes=("makes no call an IAM policy authorises",))
    if not call.known:
        return _with(base, decision="block", reasons=(f"{call.problem}",))
    if not call.actions:
        return _with(base, notes=("names nothing to act on",))
    if scope is None:
        return _with(base, decision="block", reasons=("no task scope to check it against",))
    reasons = [v.reason for v in scope.evaluate(actions=call.actions, resources=call.resources,
                                                region=call.region, account=call.account or None,
                                                at=at).violations]  # fmt: skip
    if scope.allow_regions is not None and not global_only(call.actions):
        if call.region_dynamic:
            reasons.append(f"its region is only known at run time and scope {scope.name} "
                           "limits regions")  # fmt: skip
        elif not call.region:
            reasons.append(f"it names no region (--region, AWS_REGION or AWS_DEFAULT_REGION) "
                           f"and scope {scope.name} limits regions")  # fmt: skip
    if call.unknown_resources and _limits_resources(scope):
        reasons.append(f"some of its arguments are only known at run time and scope "
                       f"{scope.name} limits resources")  # fmt: skip
    if call.endpoint_url is not None:
        base = _with(base, notes=(f"sent to {call.endpoint_url}; checked as an AWS call",))
    if reasons:
        return _with(base, decision="block", reasons=tuple(reasons))
    return base


def _check_tool(
    use: iac.ToolUse, scope: Scope | None, account: str, at: datetime, via: tuple[str, ...]
) -> CheckedCall:
    from detector.core.resources import partition_for

    base = CheckedCall(kind="tool", command=use.command, decision="allow", actions=use.destroys,
                       region=use.region, via=via)  # fmt: skip
    if not use.destroys:
        note = f"{use.tool} makes its own AWS calls; the gate sees only its destroy verbs"
        return _with(base, notes=(note,))
    if scope is None:
        return _with(base, decision="block", reasons=("no task scope to check it against",))
    partition = partition_for(use.region)
    stacks = tuple(
        f"arn:{partition}:cloudformation:{use.region}:{account}:stack/{name}"
        for name in use.resources
    )
    verdict = scope.evaluate(actions=use.destroys, resources=stacks, region=use.region,
                             account=account or None, at=at)  # fmt: skip
    reasons = [f"{use.tool} {use.verb} stands for {', '.join(use.destroys)}: {v.reason}"
               for v in verdict.violations]  # fmt: skip
    if use.any:
        denied = [p for p in scope.deny_actions.patterns if _denies_a_delete(p)]
        if denied:
            reasons.append(f"{use.tool} may delete anything its state holds, and scope "
                           f"{scope.name} denies {', '.join(denied)}")  # fmt: skip
    if not use.resources and use.tool == "cdk" and _limits_resources(scope):
        reasons.append(f"it names no stack, so it may destroy every stack of the app, and "
                       f"scope {scope.name} limits resources")  # fmt: skip
    base = _with(base, resources=stacks)
    if reasons:
        return _with(base, decision="block", reasons=tuple(reasons))
    return base


def _verdict(calls: list[CheckedCall], scope: Scope | None) -> Verdict:
    name = scope.name if scope is not None else None
    notes = tuple(f"{c.command}: {note}" for c in calls for note in c.notes)
    blocked = [c for c in calls if c.decision == "block"]
    if not blocked:
        checked = sum(1 for c in calls if c.kind in ("aws", "tool") and c.actions)
        if checked:
            reason = f"{checked} AWS call(s) within scope {name}"
        elif notes:
            reason = "no AWS call the gate can check; see the notes"
        else:
            reason = "no AWS call in this command line"
        return Verdict(decision="allow", reason=reason, scope=name, calls=tuple(calls),
                       notes=notes)  # fmt: skip
    lines = [f"{c.command}: {'; '.join(c.reasons)}" for c in blocked]
    if scope is not None and scope.on_violation == "approve":
        lines.append(f"scope {name} routes out-of-scope calls to two-person approval, which "
                     "the gate asks the service for when one is configured")  # fmt: skip
    return Verdict(decision="block", reason="\n".join(lines), scope=name, calls=tuple(calls),
                   notes=notes)  # fmt: skip


def _with(call: CheckedCall, **changes: Any) -> CheckedCall:
    return replace(call, **changes)


def _limits_resources(scope: Scope) -> bool:
    return scope.allow_resources is not None or bool(scope.deny_resources.patterns)


def _denies_a_delete(pattern: str) -> bool:
    """True when a deny glob could match some delete or terminate action."""
    from detector.core.scope import glob_regex

    name = pattern.split(":", 1)[-1]
    if name.lower().startswith(_DELETE_VERBS):
        return True
    regex = re.compile(glob_regex(name), re.IGNORECASE)
    return any(regex.fullmatch(verb) for verb in ("Delete", "Terminate"))


def _single_account(scope: Scope) -> str:
    """The scope's one allowed account, when it names exactly one without wildcards."""
    accounts = scope.allow_accounts.patterns if scope.allow_accounts is not None else ()
    if len(accounts) == 1 and accounts[0].isdigit():
        return accounts[0]
    return ""


__all__ = ["CheckedCall", "Verdict", "allow", "block", "decide", "program_name"]
