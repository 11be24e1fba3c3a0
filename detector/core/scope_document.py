"""A compiled scope written back as the scope file's document form.

The service hands a task's scope to the pre-flight gate as JSON (`GET /v1/tasks/{id}`), and
the gate compiles it with `parse_scopes` as if it had read a scope file: what it checks is
exactly what the service's scope file says. `scope_document(s)` parsed again gives a scope
that decides every call the same way (held by a property test).
"""

from __future__ import annotations

from typing import Any

from detector.core.scope import Scope, stamp


def scope_document(scope: Scope) -> dict[str, Any]:
    """One entry of a scope file's `scopes` list, as JSON-able data."""
    match: dict[str, Any] = {name: pattern for name, pattern, _ in scope.match}
    if scope.tags:
        match["tags"] = {key: pattern for key, pattern, _ in scope.tags}
    allow: dict[str, Any] = {"actions": list(scope.allow_actions.patterns)}
    optional = {
        "resources": scope.allow_resources,
        "regions": scope.allow_regions,
        "accounts": scope.allow_accounts,
    }
    for key, globs in optional.items():
        if globs is not None:
            allow[key] = list(globs.patterns)
    document: dict[str, Any] = {"name": scope.name, "match": match, "allow": allow}
    deny = {
        key: list(globs.patterns)
        for key, globs in (("actions", scope.deny_actions), ("resources", scope.deny_resources))
        if globs.patterns
    }
    if deny:
        document["deny"] = deny
    if scope.description is not None:
        document["description"] = scope.description
    if scope.expires is not None:
        document["expires"] = stamp(scope.expires)
    document["on_violation"] = scope.on_violation
    return document
