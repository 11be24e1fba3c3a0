"""What the sources that keep their own position share (LookupEvents poller, watched files).

The reader that validates their settings with errors naming `sources.<name>.<key>`, the
batch that redelivers itself when the runtime fails it, and a sleep that ends early on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from detector.errors import ConfigError
from detector.records import BadInput, Record
from detector.sources.base import Batch

logger = logging.getLogger(__name__)

# A nacked batch is delivered this many more times before its records are dead-lettered.
REDELIVERIES = 3
# Keys the runtime reads from every source entry (which factory, which name); not settings.
ENTRY_KEYS = frozenset({"type", "name"})

Sleep = Callable[[float], Awaitable[None]]


class SettingsReader:
    """Reads one source's settings mapping; every error names `sources.<name>.<key>`.

    A key given as null counts as not given, as it does in the main configuration.
    """

    def __init__(self, name: str, settings: Mapping[str, Any], known: Iterable[str]) -> None:
        self.name = name
        if not isinstance(settings, Mapping):
            raise ConfigError(f"sources.{name} must be a mapping of settings")
        allowed = sorted({*known, *ENTRY_KEYS})
        unknown = sorted(str(key) for key in settings if key not in allowed)
        if unknown:
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f" (did you mean '{self.key(close[0])}'?)" if close else ""
            raise ConfigError(f"{self.key(unknown[0])}: unknown setting{hint}")
        self._settings = settings

    def key(self, key: str) -> str:
        return f"sources.{self.name}.{key}"

    def _get(self, key: str) -> Any:
        return self._settings.get(key)

    def seconds(self, key: str, default: float, *, positive: bool = False) -> float:
        value = self._get(key)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
            or (positive and value == 0)
        ):
            what = "a positive" if positive else "a non-negative"
            raise ConfigError(f"{self.key(key)} must be {what} number of seconds, got {value!r}")
        return float(value)

    def count(self, key: str, default: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{self.key(key)} must be a positive integer, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(key)} must be true or false, got {value!r}")
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key)
        if value is None:
            if required:
                raise ConfigError(f"{self.key(key)} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.key(key)} must be a non-empty string, got {value!r}")
        return value

    def texts(self, key: str) -> list[str]:
        """A required, non-empty list of distinct non-empty strings."""
        value = self._get(key)
        if value is None:
            raise ConfigError(f"{self.key(key)} is required")
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(f"{self.key(key)} must be a non-empty list, got {value!r}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(f"{self.key(key)}[{index}] must be a non-empty string")
        if len(set(value)) != len(value):
            raise ConfigError(f"{self.key(key)} lists the same entry twice")
        return list(value)


def redeliverable_batch(
    source: str,
    items: list[Record | BadInput],
    *,
    on_ack: Callable[[], None],
    requeue: Callable[[Batch], None],
    on_give_up: Callable[[], None] | None = None,
    failures: int = 0,
) -> Batch:
    """A Batch whose ack runs `on_ack` once and whose nack hands a copy to `requeue`.

    After REDELIVERIES failed deliveries the records come back as BadInput, so the runtime's
    ordinary handling dead-letters them and the ack still advances the position. A batch
    that cannot even be dead-lettered is dropped with an error, its position not advanced,
    and `on_give_up` runs.
    """
    settled = False

    async def ack() -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        on_ack()

    async def nack(error: BaseException) -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        attempt = failures + 1
        again: list[Record | BadInput]
        if attempt <= REDELIVERIES:
            logger.warning(
                "%s: a batch of %d records failed (%s); delivering it again (%d of %d)",
                source,
                len(items),
                error,
                attempt,
                REDELIVERIES,
            )
            again = items
        elif attempt == REDELIVERIES + 1:
            logger.error(
                "%s: a batch of %d records failed %d times (%s); dead-lettering it",
                source,
                len(items),
                attempt,
                error,
            )
            reason = f"batch failed {attempt} times: {error}"
            again = [
                item if isinstance(item, BadInput) else BadInput(item.origin, reason, item.value)
                for item in items
            ]
        else:
            logger.error(
                "%s: dropping a batch of %d records that could not be dead-lettered: %s",
                source,
                len(items),
                error,
            )
            if on_give_up is not None:
                on_give_up()
            return
        requeue(
            redeliverable_batch(
                source,
                again,
                on_ack=on_ack,
                requeue=requeue,
                on_give_up=on_give_up,
                failures=attempt,
            )
        )

    return Batch(source=source, items=items, ack=ack, nack=nack)


async def sleep_until_stopped(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep that setting `stopping` cuts short, so `stop` never waits out a poll interval."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
