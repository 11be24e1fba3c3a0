"""Logging set-up: one JSON object per line for the service, plain text for people.

JSON lines are what log shippers parse without configuration, and fields passed with
`extra=` (source, shard, count, ...) arrive as fields one can filter on rather than words
inside a message. Log records go to stderr: stdout may carry output records.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any, Literal

import orjson

from detector.errors import ConfigError

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Fields the formatter writes itself; an extra with one of these names is kept under a prefix.
_RESERVED = frozenset({"time", "level", "logger", "message", "error", "traceback", "stack"})

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller attached with `extra=`, in the order they were given."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


def _fallback(value: object) -> str:
    # orjson handles str, numbers, datetimes, enums, dataclasses; anything else is logged as
    # its str() rather than failing the log call.
    return str(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, extras, error."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extras(record).items():
            entry[f"extra_{key}" if key in _RESERVED else key] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry["error"] = {"type": _type_name(exc), "message": str(exc)}
            entry["traceback"] = "".join(traceback.format_exception(exc)).rstrip()
        elif record.exc_text:
            # Set by a handler that formatted the exception before this formatter ran.
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return orjson.dumps(entry, default=_fallback, option=orjson.OPT_NON_STR_KEYS).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines with the extras appended as key=value pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = extras(record)
        if not fields:
            return line
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        # Keep a traceback, when there is one, below the pairs rather than before them.
        head, sep, tail = line.partition("\n")
        return f"{head} {pairs}{sep}{tail}"


class _Installed(logging.StreamHandler[IO[str]]):
    """Marks the handler `configure` installs, so a second call replaces it."""


def configure(
    level: str = "info", fmt: LogFormat = "json", *, stream: IO[str] | None = None
) -> None:
    """Install the JSON or text formatter on the root logger at `level`.

    Handlers installed by others (a test harness's capture handler, say) are left alone.
    """
    try:
        numeric = LEVELS[level.strip().lower()]
    except KeyError:
        raise ConfigError(f"unknown log level {level!r} (one of {', '.join(LEVELS)})") from None
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif fmt == "text":
        formatter = TextFormatter()
    else:
        raise ConfigError(f"unknown log format {fmt!r} (one of json, text)")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Installed):
            root.removeHandler(handler)
            handler.close()
    handler = _Installed(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(numeric)


def _rfc3339(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    # Builtins by bare name; everything else qualified so same-named errors stay distinct.
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
