"""Reading a scope file (`--scopes FILE`): decode YAML or JSON, then hand it to the core.

`.json` files are read as JSON, `.yaml` / `.yml` as YAML; any other name is read as JSON
when its first character opens an object or array, else as YAML. Every failure is a
ConfigError that names the file and, for syntax errors, the line.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from detector.core.scope import ScopeSet, parse_scopes
from detector.errors import ConfigError

JSON_SUFFIXES = frozenset({".json"})
YAML_SUFFIXES = frozenset({".yaml", ".yml"})


@functools.cache
def _unique_key_loader() -> type[Any]:
    """A SafeLoader that refuses repeated mapping keys, which PyYAML would silently let the
    last one win (a second `allow:` in a scope would quietly replace the first). Built on
    first use: PyYAML is imported only when a YAML file is read (the gate reads JSON)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, Hashable):
                continue  # construct_mapping reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return loader.construct_mapping(node)

    UniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        construct_mapping,
    )
    return UniqueKeyLoader


def load_scopes(path: Path) -> ScopeSet:
    """Read, decode and validate a scope file. Raises ConfigError."""
    return parse_scopes(read_scope_document(path), source=str(path))


def read_scope_document(path: Path) -> Any:
    """Read and decode a scope file, not yet validated. Raises ConfigError."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read scope file: {exc.strerror or exc}") from exc
    return decode(text, source=source, suffix=path.suffix.lower())


def decode(text: str, *, source: str, suffix: str = "") -> Any:
    """Decode scope file text as JSON or YAML (see the module docstring for which)."""
    as_json = suffix in JSON_SUFFIXES or (
        suffix not in YAML_SUFFIXES and text.lstrip()[:1] in ("{", "[")
    )
    if as_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source}: JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    import yaml

    try:
        return yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source}: YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}") from None
