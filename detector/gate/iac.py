"""Infrastructure tools that call AWS for the agent, which the gate cannot see into.

Their destroy verbs are checked as the IAM actions they stand for; every other use of them
is allowed and noted, because the calls they make are the tool's, not the command line's.

| tool              | destroy verb                          | checked as                    |
|-------------------|---------------------------------------|-------------------------------|
| terraform, tofu   | destroy, apply -destroy               | any delete (`*:Delete*`)      |
| terragrunt        | destroy, run-all destroy, run destroy | any delete (`*:Delete*`)      |
| pulumi            | destroy, down                         | any delete (`*:Delete*`)      |
| cdk               | destroy                               | cloudformation:DeleteStack    |
| sam               | delete                                | cloudformation:DeleteStack    |
| serverless, sls   | remove                                | cloudformation:DeleteStack    |
| copilot           | app/env/svc/job/pipeline/task delete  | cloudformation:DeleteStack    |
| eksctl            | delete cluster                        | eks:DeleteCluster, DeleteStack |
| eksctl            | delete nodegroup                      | eks:DeleteNodegroup, DeleteStack |
| eksctl            | delete <anything else>                | eks:Delete*, DeleteStack      |

"Any delete" means the tool may delete whatever its state holds, in any service: it passes
only when the scope allows `*:Delete*` itself (an allow of `*` or `*:Delete*`) and denies
no delete or terminate action at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

ANY_DELETE = "*:Delete*"
DELETE_STACK = "cloudformation:DeleteStack"
TOOLS = frozenset({"terraform", "tofu", "terragrunt", "pulumi", "cdk", "sam", "serverless",
                   "sls", "copilot", "eksctl"})  # fmt: skip
# Package names that `npx` and friends run under a tool's name.
ALIASES = {"aws-cdk": "cdk", "aws-sam-cli": "sam", "opentofu": "tofu"}
_EKSCTL = {"cluster": "eks:DeleteCluster", "nodegroup": "eks:DeleteNodegroup"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUse:
    """One use of an infrastructure tool.

    verb      the destroy verb as written ("destroy", "apply -destroy", "svc delete")
    destroys  the IAM actions its destroy verb stands for; () when it is not a destroy
    any       the destroy may delete anything in any service (terraform, pulumi)
    """

    tool: str
    command: str
    verb: str = ""
    destroys: tuple[str, ...] = ()
    any: bool = False
    resources: tuple[str, ...] = ()
    region: str = ""


def tool_name(program: str) -> str | None:
    """The tool a program name is, or None."""
    name = ALIASES.get(program, program)
    return name if name in TOOLS else None


def classify(tool: str, argv: Sequence[str], *, region: str = "") -> ToolUse:
    """What `tool argv[1:]` would do (argv[0] is the program)."""
    args = [a for a in argv[1:] if not a.startswith("-")]
    flags = {a.split("=", 1)[0] for a in argv[1:] if a.startswith("-")}
    command = " ".join(argv)
    region = _option(argv, "--region") or region
    use = ToolUse(tool=tool, command=command, region=region)
    verb = args[0] if args else ""
    if tool in ("terraform", "tofu", "terragrunt"):
        verbs = args[:2] if tool == "terragrunt" and verb in ("run-all", "run") else args[:1]
        destroy = "destroy" in verbs or (
            "apply" in verbs and ("-destroy" in flags or "--destroy" in flags)
        )
        if destroy:
            said = " ".join(verbs) + (" -destroy" if "destroy" not in verbs else "")
            return replace(use, verb=said, destroys=(ANY_DELETE,), any=True)
    elif tool == "pulumi":
        if verb in ("destroy", "down"):
            return replace(use, verb=verb, destroys=(ANY_DELETE,), any=True)
    elif tool == "cdk":
        if verb == "destroy":
            return replace(use, verb=verb, destroys=(DELETE_STACK,), resources=tuple(args[1:]))
    elif tool == "sam":
        if verb == "delete":
            stack = _option(argv, "--stack-name")
            stacks = (stack,) if stack else ()
            return replace(use, verb=verb, destroys=(DELETE_STACK,), resources=stacks)
    elif tool in ("serverless", "sls"):
        if verb == "remove":
            return replace(use, verb=verb, destroys=(DELETE_STACK,))
    elif tool == "copilot":
        if "delete" in args[:2]:
            return replace(use, verb=" ".join(args[:2]), destroys=(DELETE_STACK,))
    elif tool == "eksctl" and verb == "delete":
        what = args[1] if len(args) > 1 else ""
        action = _EKSCTL.get(what, "eks:Delete*")
        return replace(use, verb=f"delete {what}".strip(), destroys=(action, DELETE_STACK))
    return use


def _option(argv: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None
