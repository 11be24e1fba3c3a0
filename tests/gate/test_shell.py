"""The shell grammar walk: which simple commands a line runs, and what it refuses to read."""

from __future__ import annotations

import pytest

from detector.gate.shell import ShellSyntaxError, parse
from detector.gate.unwrap import invocations


def argvs(line: str) -> list[tuple[str, ...]]:
    return [command.argv for command in parse(line)]


def programs(line: str) -> list[tuple[str, ...]]:
    return [run.argv for run in invocations(line)]


def test_operators_split_commands_and_quotes_protect_them() -> None:
    assert argvs("a 1; b 2 && c || d | e & f\ng") == [
        ("a", "1"), ("b", "2"), ("c",), ("d",), ("e",), ("f",), ("g",),
    ]  # fmt: skip
    assert argvs("echo 'a;b' \"c && d\" e\\;f") == [("echo", "a;b", "c && d", "e;f")]


def test_subshells_and_groups_are_walked() -> None:
    assert argvs("(cd x && { make; }) ; if true; then aws s3 ls; fi") == [
        ("cd", "x"), ("make",), ("true",), ("aws", "s3", "ls"),
    ]  # fmt: skip


def test_substitutions_run_their_own_commands() -> None:
    commands = parse('echo "$(aws s3 ls)" `aws sts get-caller-identity` <(aws ec2 x)')
    assert [c.argv[:2] for c in commands[1:]] == [("aws", "s3"), ("aws", "sts"), ("aws", "ec2")]
    assert all(c.origin == "command substitution" for c in commands[1:])
    assert commands[0].words[1].dynamic


def test_nested_substitution() -> None:
    assert ("aws", "s3", "rb", "s3://x") in argvs("echo $(echo $(aws s3 rb s3://x))")
    assert ("aws", "s3", "rb", "s3://x") in argvs('echo "${NAME:-$(aws s3 rb s3://x)}"')
    assert ("aws", "s3", "rb", "s3://x") in argvs("echo $(( $(aws s3 rb s3://x) + 1 ))")


def test_redirections_do_not_become_arguments() -> None:
    assert argvs("aws s3 ls 2>/dev/null >out.txt 2>&1 < in") == [("aws", "s3", "ls")]


def test_line_continuations_and_comments() -> None:
    assert argvs("aws s3 \\\n ls # aws s3 rb s3://x\n") == [("aws", "s3", "ls")]
    assert argvs("echo a#b") == [("echo", "a#b")]


def test_assignments_before_a_command() -> None:
    (command,) = parse("AWS_REGION=eu-west-1 FOO='a b' aws s3 ls")
    assert command.assignments == (("AWS_REGION", "eu-west-1"), ("FOO", "a b"))
    assert command.argv == ("aws", "s3", "ls")


def test_heredocs_are_data_unless_a_shell_reads_them() -> None:
    assert programs("cat <<'EOF' > f\naws s3 rb s3://x\nEOF\necho done") == [
        ("cat",), ("echo", "done"),
    ]  # fmt: skip
    assert programs("bash <<-EOF\n\taws s3 rb s3://x\n\tEOF") == [("aws", "s3", "rb", "s3://x")]


@pytest.mark.parametrize(
    "line",
    ["echo 'open", 'echo "open', "echo $(ls", "echo `ls", "(ls", "ls )", "cat <<EOF\nbody",
     "ls >", "case x in a) ls;; esac", "echo ${open"],
)  # fmt: skip
def test_what_it_cannot_close_is_an_error(line: str) -> None:
    with pytest.raises(ShellSyntaxError):
        invocations(line)


def test_wrappers_are_unwrapped() -> None:
    line = (
        "sudo -u root env -i AWS_REGION=us-east-1 nohup nice -n 5 timeout 30 stdbuf -o L aws s3 ls"
    )
    (run,) = invocations(line)
    assert run.argv == ("aws", "s3", "ls")
    assert run.via == ("sudo", "env", "nohup", "nice", "timeout", "stdbuf")
    assert dict(run.env)["AWS_REGION"] == "us-east-1"


def test_shells_and_eval_are_parsed_again() -> None:
    runs = invocations("bash -xc 'aws s3 ls; sh -c \"aws s3 rb s3://x\"'; eval aws s3 mb s3://y")
    assert [r.argv for r in runs] == [
        ("aws", "s3", "ls"), ("aws", "s3", "rb", "s3://x"), ("aws", "s3", "mb", "s3://y"),
    ]  # fmt: skip
    assert runs[1].via == ("bash -c", "sh -c")


def test_exports_reach_later_commands_only() -> None:
    first, second = invocations("aws s3 ls; export AWS_REGION=eu-west-1; aws s3 ls")
    assert "AWS_REGION" not in dict(first.env)
    assert dict(second.env)["AWS_REGION"] == "eu-west-1"


def test_xargs_and_find_exec_append_arguments() -> None:
    (run,) = invocations("xargs -n 1 -P 4 aws s3 rm")[-1:]
    assert run.argv == ("aws", "s3", "rm") and run.appended
    (found,) = invocations("find . -exec aws s3 cp {} s3://b/ \\;")
    assert found.argv == ("aws", "s3", "cp", "{}", "s3://b/") and found.appended


def test_hidden_commands_are_reported() -> None:
    (script,) = invocations("bash ./deploy.sh")
    assert script.hidden is not None and not script.stdin
    (piped,) = invocations("curl -s x | sh")[-1:]
    assert piped.stdin


def test_deep_nesting_is_refused() -> None:
    line = "aws s3 ls"
    for _ in range(20):
        line = f"bash -c {line!r}"
    with pytest.raises(ShellSyntaxError):
        invocations(line)
