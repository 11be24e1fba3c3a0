"""Scope files for the gate, without decoding YAML on every tool call.

Importing and running PyYAML is the largest single cost of a gate start-up that reads a
YAML scope file. A file that parses is cached as the JSON of its compiled scopes
(`scope_document`, which compiles back to the same scopes) under the user's cache
directory (`$XDG_CACHE_HOME/trailguard/scopes/`, else `~/.cache/trailguard/scopes/`),
together with the file's whole text: the cache is used only while the file still reads
exactly the same, so an edited scope file takes effect on the next call. A JSON scope file
is read directly. A cache that cannot be read or written is skipped: it is only a cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from detector.core.scope import ScopeSet, parse_scopes
from detector.errors import ConfigError

CACHE_VERSION = 1


def load_scopes(path: Path, environ: Mapping[str, str]) -> ScopeSet:
    """The scopes of the file at `path`, as `detector.scope_file.load_scopes` reads them.
    Raises ConfigError."""
    source = str(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read scope file: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".json" or (suffix not in (".yaml", ".yml") and text.lstrip()[:1] in ("{", "[")):
        from detector.scope_file import decode

        return parse_scopes(decode(text, source=source, suffix=suffix), source=source)
    entry = cache_dir(environ) / f"{len(data)}-{zlib.crc32(data):08x}.json"
    cached = _read(entry, text)
    if cached is not None:
        try:
            return parse_scopes({"scopes": cached}, source=source)
        except ConfigError:
            pass  # written by another version, or damaged: decode the file itself
    from detector.scope_file import decode

    scopes = parse_scopes(decode(text, source=source, suffix=suffix), source=source)
    _write(entry, text, scopes)
    return scopes


def cache_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "trailguard" / "scopes"


def _read(entry: Path, text: str) -> list[Any] | None:
    try:
        stored = json.loads(entry.read_bytes())
    except (OSError, ValueError):
        return None
    if (
        isinstance(stored, dict)
        and stored.get("version") == CACHE_VERSION
        and stored.get("text") == text
        and isinstance(stored.get("scopes"), list)
    ):
        return list(stored["scopes"])
    return None


def _write(entry: Path, text: str, scopes: ScopeSet) -> None:
    from detector.core.scope_document import scope_document

    record = {
        "version": CACHE_VERSION,
        "text": text,
        "scopes": [scope_document(s) for s in scopes.scopes],
    }
    temporary = entry.with_name(f".{entry.name}.{os.getpid()}")
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        # Renamed into place whole, so a gate running at the same time reads all or nothing.
        os.replace(temporary, entry)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
