"""Simple commands → the programs that actually run, through the wrappers agents use.

`sudo`, `env`, `nohup`, `time`, `nice`, `timeout`, `xargs`, `npx`, `exec`, `command`,
`watch` and `find -exec` run the command in their arguments; `bash -c`, `sh -c` and `eval`
run a whole command line, parsed again here; `export NAME=value` and bare assignments set
the environment of the commands after them on the same line. A shell that reads its
commands from somewhere the gate cannot see (a pipe, a file) is reported as such.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from detector.gate.shell import MAX_DEPTH, ShellSyntaxError, SimpleCommand, Word, parse

SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "ash", "mksh"})
# Wrapper → options that take a value (so the value is not mistaken for the command).
WRAPPERS: Mapping[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user",
                       "--group", "--host", "--prompt", "--chdir"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "-C", "--unset", "--chdir", "-S", "--split-string"}),
    "nohup": frozenset(),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "setsid": frozenset(),
    "chronic": frozenset(),
    "unbuffer": frozenset(),
    "caffeinate": frozenset({"-t", "-w"}),
    "xargs": frozenset({"-a", "-d", "-E", "-e", "-I", "-i", "-L", "-l", "-n", "-P", "-s",
                        "--arg-file", "--delimiter", "--eof", "--replace", "--max-lines",
                        "--max-args", "--max-procs", "--max-chars"}),
    "npx": frozenset({"-p", "--package", "-c", "--call"}),
    "pnpx": frozenset({"-p", "--package"}),
    "bunx": frozenset({"-p", "--package"}),
    "watch": frozenset({"-n", "-d", "--interval", "--differences"}),
}  # fmt: skip
# Wrappers whose first positional argument is theirs, not the command's.
POSITIONAL_FIRST = frozenset({"timeout"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One program the line runs, with what the gate knows about how it runs.

    env       NAME=value pairs the line itself sets for it (not the process environment)
    via       the wrappers it runs under, outermost first
    appended  a wrapper (xargs, find -exec) adds arguments only known at run time
    hidden    why its commands cannot be seen (a shell reading a pipe or a file), or None
    stdin     the hidden commands come from standard input (a pipe), not a named file
    """

    words: tuple[Word, ...]
    env: tuple[tuple[str, str], ...] = ()
    via: tuple[str, ...] = ()
    appended: bool = False
    hidden: str | None = None
    stdin: bool = False
    origin: str = "command line"

    @property
    def program(self) -> str:
        return program_name(self.words[0].value) if self.words else ""

    @property
    def argv(self) -> tuple[str, ...]:
        return tuple(word.value for word in self.words)


def program_name(value: str) -> str:
    """`/usr/local/bin/aws` → `aws`."""
    return value.rstrip("/").rsplit("/", 1)[-1]


def invocations(line: str) -> list[Invocation]:
    """Every program the line runs, in order. Raises ShellSyntaxError."""
    return list(_line(line, env={}, via=(), depth=0, origin="command line"))


def _line(
    line: str, *, env: dict[str, str], via: tuple[str, ...], depth: int, origin: str
) -> Iterator[Invocation]:
    if depth > MAX_DEPTH:
        raise ShellSyntaxError(f"shells nested more than {MAX_DEPTH} deep")
    # A line's assignments and exports reach the commands after them in the same shell.
    scope = dict(env)
    for command in parse(line, origin=origin):
        yield from _command(command, scope, via, depth)


def _command(
    command: SimpleCommand, env: dict[str, str], via: tuple[str, ...], depth: int
) -> Iterator[Invocation]:
    words = command.words
    if not words:
        env.update(command.assignments)
        return
    if words[0].value in ("export", "declare", "typeset", "local", "readonly"):
        for word in words[1:]:
            name, sep, value = word.value.partition("=")
            if sep and name.isidentifier():
                env[name] = value
        return
    local = {**env, **dict(command.assignments)}
    yield from _unwrap(words, local, via, depth, command)


def _unwrap(
    words: tuple[Word, ...],
    env: dict[str, str],
    via: tuple[str, ...],
    depth: int,
    command: SimpleCommand,
    *,
    appended: bool = False,
) -> Iterator[Invocation]:
    while words:
        name = program_name(words[0].value)
        if name in SHELLS:
            yield from _shell(words, env, via, depth, command, appended=appended)
            return
        if name == "eval":
            script = " ".join(word.value for word in words[1:])
            yield from _line(script, env=env, via=(*via, "eval"), depth=depth + 1, origin="eval")
            return
        if name == "find":
            inner = _find_exec(words)
            if inner is None:
                break
            via, words, appended = (*via, "find -exec"), inner, True
            continue
        if name not in WRAPPERS or words[0].dynamic:
            break
        if name == "command" and len(words) > 1 and words[1].value in ("-v", "-V"):
            return  # only says where the program is
        split = _split_string(words) if name == "env" else None
        if split is not None:
            yield from _line(split, env=env, via=(*via, "env -S"), depth=depth + 1, origin="env -S")
            return
        rest = _skip_options(words[1:], WRAPPERS[name], env if name == "env" else None)
        if name in POSITIONAL_FIRST and rest:
            rest = rest[1:]
        if name == "watch":
            script = " ".join(word.value for word in rest)
            yield from _line(script, env=env, via=(*via, "watch"), depth=depth + 1, origin="watch")
            return
        if name == "xargs":
            appended = True
        via, words = (*via, name), rest
    if words:
        yield Invocation(
            words=words,
            env=tuple(sorted(env.items())),
            via=via,
            appended=appended,
            origin=command.origin,
        )


def _split_string(words: tuple[Word, ...]) -> str | None:
    """`env -S 'cmd args' more`: the command line env splits and runs, or None."""
    values = [word.value for word in words]
    for index, value in enumerate(values):
        if value in ("-S", "--split-string") and index + 1 < len(values):
            return " ".join(values[index + 1 :])
        if value.startswith(("-S", "--split-string=")) and value not in ("-S",):
            head = value.removeprefix("--split-string=").removeprefix("-S")
            return " ".join([head, *values[index + 1 :]])
    return None


def _skip_options(
    words: tuple[Word, ...], takes_value: frozenset[str], env: dict[str, str] | None
) -> tuple[Word, ...]:
    """The words after a wrapper's own options (and, for `env`, its NAME=value pairs)."""
    index = 0
    while index < len(words):
        value = words[index].value
        if value == "--":
            index += 1
            break
        if env is not None and "=" in value and value.partition("=")[0].isidentifier():
            name, _, assigned = value.partition("=")
            env[name] = assigned
            index += 1
            continue
        if not value.startswith("-") or value == "-":
            break
        index += 2 if value in takes_value else 1
    return words[index:]


def _shell(
    words: tuple[Word, ...],
    env: dict[str, str],
    via: tuple[str, ...],
    depth: int,
    command: SimpleCommand,
    *,
    appended: bool,
) -> Iterator[Invocation]:
    name = program_name(words[0].value)
    index = 1
    script: str | None = None
    wants_script = False
    while index < len(words):
        value = words[index].value
        if value == "--":
            index += 1
            break
        if value in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            index += 2
            continue
        if value.startswith("-") and not value.startswith("--") and "c" in value[1:]:
            wants_script = True
        elif not value.startswith(("-", "+")):
            break
        index += 1
    if wants_script and index < len(words):
        script = words[index].value
    if script is not None:
        yield from _line(
            script, env=env, via=(*via, f"{name} -c"), depth=depth + 1, origin=f"{name} -c"
        )
        return
    if index >= len(words) and command.heredocs:
        for body in command.heredocs:
            yield from _line(
                body, env=env, via=(*via, name), depth=depth + 1, origin=f"{name} heredoc"
            )
        return
    hidden = (
        f"{name} runs the script file {words[index].value}, which the gate does not read"
        if index < len(words)
        else f"{name} reads its commands from standard input, which the gate cannot see"
    )
    yield Invocation(
        words=words,
        env=tuple(sorted(env.items())),
        via=via,
        appended=appended,
        hidden=hidden,
        stdin=index >= len(words),
        origin=command.origin,
    )


def _find_exec(words: tuple[Word, ...]) -> tuple[Word, ...] | None:
    values = [word.value for word in words]
    for flag in ("-exec", "-execdir", "-ok", "-okdir"):
        if flag in values:
            start = values.index(flag) + 1
            end = next(
                (i for i in range(start, len(values)) if values[i] in (";", "+")), len(values)
            )
            return words[start:end]
    return None
