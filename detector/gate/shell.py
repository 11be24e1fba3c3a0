"""A command line → the simple commands it runs, with the grammar a POSIX shell applies.

The scanner finds word and operator boundaries itself, because it must know what is quoted
(a quoted `;` separates nothing) and where command substitutions, heredocs and comments
are; each word's quotes are then removed by `shlex`. The walk splits on `;`, `&`, `&&`,
`||`, `|`, newlines and parentheses, and every `$(...)`, backtick and `<(...)` body is
parsed as a command line of its own, because it runs too. Anything the scanner cannot
close (a quote, a parenthesis, a substitution, a heredoc) is a ShellSyntaxError: a line
the gate cannot read is a line it cannot allow.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

MAX_DEPTH = 12
# Longest first, so `&&` is not read as two `&`.
OPERATORS = (
    "&>>", "<<-", "<<<", ";;&", "&&", "||", "|&", ";;", ";&", ">>", "<<", ">&", "<&", "&>",
    ">|", "<>", ";", "&", "|", "(", ")", "<", ">", "\n",
)  # fmt: skip
OPERATOR_CHARS = frozenset(";&|()<>\n")
REDIRECTS = frozenset({"&>>", "<<-", "<<<", ">>", "<<", ">&", "<&", "&>", ">|", "<>", "<", ">"})
SEPARATORS = frozenset({";", "&", "&&", "||", "|", "|&", "\n"})
# Reserved words that open or close compound commands; the command after them still runs.
RESERVED = frozenset({"{", "}", "!", "if", "then", "else", "elif", "fi", "do", "done", "while",
                      "until"})  # fmt: skip
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
SUBSTITUTION_MARK = "\x00"


class ShellSyntaxError(ValueError):
    """The line is not something the gate can read as a shell command."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Word:
    """One word after quote removal.

    dynamic   its value is only known when the shell runs (a substitution or a $variable)
    quoted    some part of it was quoted (so it is never an operator or reserved word)
    """

    value: str
    dynamic: bool = False
    quoted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleCommand:
    """One command the shell would run: assignments, then words; heredoc bodies it reads."""

    words: tuple[Word, ...]
    assignments: tuple[tuple[str, str], ...] = ()
    heredocs: tuple[str, ...] = ()
    origin: str = "command line"

    @property
    def argv(self) -> tuple[str, ...]:
        return tuple(word.value for word in self.words)


@dataclass(slots=True)
class _Token:
    kind: str  # "word", "op" or "fd" (the digits of `2>`)
    text: str
    raw: str = ""
    subs: list[str] = field(default_factory=list)
    quoted: bool = False
    heredoc: str | None = None
    dynamic: bool = False


def parse(line: str, *, depth: int = 0, origin: str = "command line") -> list[SimpleCommand]:
    """Every simple command in the line, substitutions' commands included, in order."""
    if depth > MAX_DEPTH:
        raise ShellSyntaxError(f"commands nested more than {MAX_DEPTH} deep")
    commands: list[SimpleCommand] = []
    current: list[_Token] = []
    parens = 0
    tokens = _Scanner(line).tokens()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.kind == "op" and token.text in REDIRECTS:
            if index >= len(tokens) or tokens[index].kind != "word":
                raise ShellSyntaxError(f"redirection {token.text!r} has no target")
            target = tokens[index]
            index += 1
            for inner in target.subs:
                commands.extend(parse(inner, depth=depth + 1, origin="command substitution"))
            if target.heredoc is not None and current:
                current[-1].heredoc = (current[-1].heredoc or "") + target.heredoc
            elif target.heredoc is not None:
                current.append(_Token("heredoc", "", heredoc=target.heredoc))
            continue
        if token.kind == "fd":
            continue
        if token.kind == "op":
            if token.text == "(":
                if current and any(t.kind == "word" for t in current):
                    # `name() { ...; }` defines a function; its body is still scanned.
                    if index < len(tokens) and tokens[index].text == ")":
                        index += 1
                        current = []
                        continue
                    raise ShellSyntaxError("'(' in the middle of a command")
                parens += 1
            elif token.text == ")":
                parens -= 1
                if parens < 0:
                    raise ShellSyntaxError("')' without a matching '('")
            elif token.text not in SEPARATORS:
                raise ShellSyntaxError(f"unsupported shell construct {token.text!r}")
            commands.extend(_finish(current, depth, origin))
            current = []
            continue
        current.append(token)
    if parens:
        raise ShellSyntaxError("'(' without a matching ')'")
    commands.extend(_finish(current, depth, origin))
    return commands


def _finish(tokens: list[_Token], depth: int, origin: str) -> list[SimpleCommand]:
    if not tokens:
        return []
    found: list[SimpleCommand] = []
    words: list[Word] = []
    assignments: list[tuple[str, str]] = []
    heredocs = tuple(t.heredoc for t in tokens if t.heredoc is not None)
    for token in tokens:
        for inner in token.subs:
            found.extend(parse(inner, depth=depth + 1, origin="command substitution"))
        if token.kind != "word":
            continue
        value = _unquote(token.raw)
        dynamic = token.dynamic
        if not words and not token.quoted and token.text in RESERVED:
            continue
        if not words and ASSIGNMENT.match(token.raw):
            name, _, rest = value.partition("=")
            assignments.append((name, rest))
            continue
        words.append(Word(value=value, dynamic=dynamic, quoted=token.quoted))
    if words or assignments:
        found.insert(
            0,
            SimpleCommand(
                words=tuple(words),
                assignments=tuple(assignments),
                heredocs=heredocs,
                origin=origin,
            ),
        )
    return found


def _unquote(raw: str) -> str:
    """shlex's POSIX quote removal for one word (it holds no unquoted blank)."""
    if raw.startswith("$'"):
        raw = raw[1:]  # ANSI-C quoting: close enough for names and flags
    try:
        parts = shlex.split(raw, posix=True)
    except ValueError as exc:
        raise ShellSyntaxError(f"cannot unquote {raw!r}: {exc}") from None
    return "".join(parts)


class _Scanner:
    """Splits a line into word, operator and io-number tokens, keeping each word's raw text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.pending_heredocs: list[tuple[_Token, str, bool, bool]] = []
        self.dynamic = False

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r":
                self.pos += 1
            elif text.startswith("\\\n", self.pos):
                self.pos += 2
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif char == "\n":
                out.append(_Token("op", "\n"))
                self.pos += 1
                self._read_heredocs()
            elif char in "<>" and text.startswith("(", self.pos + 1):
                # Process substitution: the command inside runs.
                start = self.pos
                self.pos += 1
                inner = self._balanced_paren()
                out.append(_Token("word", text[start : self.pos], raw="''", subs=[inner]))
            elif char in OPERATOR_CHARS:
                op = next(o for o in OPERATORS if text.startswith(o, self.pos))
                self.pos += len(op)
                out.append(_Token("op", op))
                if op in ("<<", "<<-"):
                    self._heredoc_word(out, strip_tabs=op == "<<-")
            else:
                out.append(self._word())
        if self.pending_heredocs:
            raise ShellSyntaxError("heredoc without its body")
        return out

    def _word(self) -> _Token:
        text = self.text
        start = self.pos
        subs: list[str] = []
        raw: list[str] = []
        quoted = False
        self.dynamic = False
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r" or char in OPERATOR_CHARS:
                break
            if char == "\\":
                if text.startswith("\\\n", self.pos):
                    self.pos += 2
                    continue
                raw.append(text[self.pos : self.pos + 2])
                self.pos += 2
                quoted = True
            elif char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated single quote")
                raw.append(text[self.pos : end + 1])
                self.pos = end + 1
                quoted = True
            elif text.startswith("$'", self.pos):
                end = self._ansi_end(self.pos + 2)
                raw.append(text[self.pos : end + 1])
                self.pos = end + 1
                quoted = True
            elif char == '"':
                raw.append(self._double_quoted(subs))
                quoted = True
            elif char in "$`":
                raw.append(self._dollar(subs))
            else:
                raw.append(char)
                self.pos += 1
        word = "".join(raw)
        kind = "word"
        if word.isdigit() and self.pos < len(text) and text[self.pos] in "<>":
            kind = "fd"
        return _Token(
            kind, text[start : self.pos], raw=word, subs=subs, quoted=quoted, dynamic=self.dynamic
        )

    def _double_quoted(self, subs: list[str]) -> str:
        text = self.text
        out = ['"']
        self.pos += 1
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                out.append(text[self.pos : self.pos + 2])
                self.pos += 2
            elif char == '"':
                self.pos += 1
                out.append('"')
                return "".join(out)
            elif char in "$`":
                out.append(self._dollar(subs))
            else:
                out.append(char)
                self.pos += 1
        raise ShellSyntaxError("unterminated double quote")

    def _dollar(self, subs: list[str]) -> str:
        """A `$...` or backtick at pos; substitutions are recorded and stand as a marker."""
        text = self.text
        before = self.dynamic
        self.dynamic = True
        if text.startswith("$((", self.pos):
            self.pos += 1
            # Arithmetic runs no command itself, but substitutions inside it do.
            _substitutions_in(self._balanced_paren(), subs)
            return "$" + SUBSTITUTION_MARK
        if text.startswith("$(", self.pos):
            self.pos += 1
            subs.append(self._balanced_paren())
            return "$" + SUBSTITUTION_MARK
        if text.startswith("${", self.pos):
            end = text.find("}", self.pos)
            if end < 0:
                raise ShellSyntaxError("unterminated ${")
            value = text[self.pos : end + 1]
            _substitutions_in(value[2:-1], subs)  # ${X:-$(cmd)} runs cmd
            self.pos = end + 1
            return value
        if text[self.pos] == "`":
            end = self.pos + 1
            while end < len(text) and text[end] != "`":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise ShellSyntaxError("unterminated backtick")
            subs.append(re.sub(r"\\([$`\\])", r"\1", text[self.pos + 1 : end]))
            self.pos = end + 1
            return "$" + SUBSTITUTION_MARK
        self.pos += 1
        following = text[self.pos : self.pos + 1]
        self.dynamic = before or (
            bool(following) and (following.isalnum() or following in "_?#@*!-$")
        )
        return "$"

    def _balanced_paren(self) -> str:
        """The text inside the parenthesis at pos, which is consumed with its closing one."""
        text = self.text
        assert text[self.pos] == "("
        depth = 0
        start = self.pos + 1
        index = self.pos
        quote: str | None = None
        while index < len(text):
            char = text[index]
            if quote == "'":
                if char == "'":
                    quote = None
            elif char == "\\":
                index += 1
            elif quote == '"':
                if char == '"':
                    quote = None
            elif char in "'\"":
                quote = char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    self.pos = index + 1
                    return text[start:index]
            index += 1
        raise ShellSyntaxError("unterminated $( or (")

    def _ansi_end(self, index: int) -> int:
        text = self.text
        while index < len(text):
            if text[index] == "\\":
                index += 2
                continue
            if text[index] == "'":
                return index
            index += 1
        raise ShellSyntaxError("unterminated $' quote")

    def _heredoc_word(self, out: list[_Token], *, strip_tabs: bool) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1
        if self.pos >= len(self.text) or self.text[self.pos] in OPERATOR_CHARS:
            raise ShellSyntaxError("heredoc without a delimiter")
        token = self._word()
        delimiter = _unquote(token.raw)
        self.pending_heredocs.append((token, delimiter, token.quoted, strip_tabs))
        out.append(token)

    def _read_heredocs(self) -> None:
        """Consume the bodies of the heredocs opened on the line that just ended."""
        for token, delimiter, quoted, strip_tabs in self.pending_heredocs:
            lines: list[str] = []
            while True:
                if self.pos >= len(self.text):
                    raise ShellSyntaxError(f"heredoc {delimiter!r} is never closed")
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                line = self.text[self.pos : end]
                self.pos = min(end + 1, len(self.text))
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
                lines.append(line)
            body = "\n".join(lines)
            token.heredoc = body
            if not quoted:
                # An unquoted heredoc expands $(...) and backticks as it is read.
                _substitutions_in(body, token.subs)
        self.pending_heredocs = []


def _substitutions_in(text: str, subs: list[str]) -> None:
    """Record the command substitutions in text that the shell expands without splitting
    it into words: a heredoc body, an arithmetic expression, a ${...} expansion."""
    inner = _Scanner(text)
    while inner.pos < len(text):
        if text[inner.pos] == "\\":
            inner.pos += 2
        elif text[inner.pos] in "$`":
            inner._dollar(subs)
        else:
            inner.pos += 1
