"""JSON log lines: parseable, with extras and exception details as fields."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import orjson
import pytest

from detector.errors import ConfigError, ParseError
from detector.logs import JsonFormatter, configure


class Shard(Enum):
    ZERO = "0"


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("trailguard.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_extras(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info("batch done: %d events", 120, extra={"source": "kafka-main", "shard": "3"})
    logger.warning("lagging", extra={"count": 7, "at": datetime(2025, 12, 8, tzinfo=UTC)})

    first, second = lines(stream)
    assert first["level"] == "info"
    assert first["logger"] == "trailguard.test.logs"
    assert first["message"] == "batch done: 120 events"
    assert (first["source"], first["shard"]) == ("kafka-main", "3")
    assert "error" not in first
    assert second["level"] == "warning"
    assert second["count"] == 7
    assert second["at"] == "2025-12-08T00:00:00+00:00"


def test_time_is_rfc3339_utc(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("tick")
    (entry,) = lines(stream)
    assert entry["time"].endswith("Z")
    moment = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert moment.utcoffset() == timedelta(0)


def test_exception_becomes_error_and_traceback(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    try:
        raise ParseError("eventTime is missing", origin="topic:3@42")
    except ParseError:
        logger.exception("rejected record", extra={"source": "kafka-main"})
    (entry,) = lines(stream)
    assert entry["level"] == "error"
    assert entry["source"] == "kafka-main"
    assert entry["error"] == {
        "type": "detector.errors.ParseError",
        "message": "topic:3@42: eventTime is missing",
    }
    assert entry["traceback"].startswith("Traceback (most recent call last):")
    assert "raise ParseError" in entry["traceback"]


def test_builtin_exceptions_use_their_bare_name(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    table: dict[str, int] = {}
    try:
        table["missing"]
    except KeyError:
        logger.exception("lookup failed")
    (entry,) = lines(stream)
    assert entry["error"] == {"type": "KeyError", "message": "'missing'"}


def test_awkward_extras_still_log(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info(
        "odd values",
        extra={"time": "not the real time", "shard": Shard.ZERO, "thing": object(), "ids": {1: 2}},
    )
    (entry,) = lines(stream)
    # The formatter's own fields win; a colliding extra is kept under a prefix.
    assert entry["extra_time"] == "not the real time"
    assert entry["time"] != "not the real time"
    assert entry["shard"] == "0"
    assert entry["thing"].startswith("<object object at")
    assert entry["ids"] == {"1": 2}


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.usefixtures("root_restored")
def test_configure_installs_one_handler_on_the_root_logger() -> None:
    first, second = io.StringIO(), io.StringIO()
    before = len(logging.getLogger().handlers)
    configure("debug", "json", stream=first)
    configure("INFO", "json", stream=second)
    assert len(logging.getLogger().handlers) == before + 1
    assert logging.getLogger().level == logging.INFO

    logging.getLogger("trailguard.test.configure").info("ready", extra={"port": 9108})
    assert first.getvalue() == ""
    entry = orjson.loads(second.getvalue())
    assert (entry["message"], entry["port"]) == ("ready", 9108)


@pytest.mark.usefixtures("root_restored")
def test_configure_text_appends_extras() -> None:
    stream = io.StringIO()
    configure("info", "text", stream=stream)
    logging.getLogger("trailguard.test.text").info("ready", extra={"port": 9108})
    line = stream.getvalue().strip()
    assert line.endswith("INFO trailguard.test.text: ready port=9108")


def test_configure_rejects_unknown_levels_and_formats() -> None:
    with pytest.raises(ConfigError, match="unknown log level 'loud'"):
        configure("loud")
    with pytest.raises(ConfigError, match="unknown log format 'xml'"):
        configure("info", "xml")  # type: ignore[arg-type]
