"""Bearer tokens for the approval API and the session pages.

Only hashes are stored: the token file (and `api.tokens`) maps `sha256:<hex>` of each token
to the person it stands for. A token is random (`trailguard approvals token` makes one), so
an unsalted SHA-256 is enough; every stored hash is compared, in constant time, so the time
an answer takes says nothing about which hash came close.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from detector.approvals.settings import ApiSettings
from detector.errors import ConfigError

HASH_PREFIX = "sha256:"
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    return HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class TokenTable:
    """Who a presented token belongs to, or None."""

    def __init__(self, hashes: Mapping[str, str]) -> None:
        self._entries = [(bytes.fromhex(h[len(HASH_PREFIX) :]), who) for h, who in hashes.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def person(self, token: str | None) -> str | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for stored, who in self._entries:
            # No early exit: every entry costs the same whether or not an earlier one matched.
            if hmac.compare_digest(stored, digest):
                found = who
        return found


def load_tokens(settings: ApiSettings, *, source: str) -> TokenTable:
    """The tokens of `api.tokens` and `api.tokens_file` together; a bad entry names its key."""
    hashes = dict(_checked(settings.tokens, where=f"{source}: api.tokens"))
    if settings.tokens_file is not None:
        where = f"api.tokens_file {settings.tokens_file}"
        try:
            loaded = yaml.safe_load(settings.tokens_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{where}: must map token hashes to people")
        hashes.update(_checked(loaded, where=where))
    return TokenTable(hashes)


def _checked(entries: Mapping[Any, Any], *, where: str) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, person in entries.items():
        if not isinstance(key, str) or not _HASH.fullmatch(key):
            # Never echo the key: it may be a token pasted in by mistake.
            raise ConfigError(
                f"{where}: every key must be sha256:<64 hex digits> (the hash of a token, "
                "see `trailguard approvals token`), not the token itself"
            )
        if not isinstance(person, str) or not person.strip():
            raise ConfigError(f"{where}: {key[:15]}...: the person must be a non-empty string")
        checked[key] = person.strip()
    return checked


def read_token_file(path: Path) -> str:
    """A token kept in a file (the CLI's --token-file): its first line, stripped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--token-file {path}: cannot read: {exc.strerror}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise ConfigError(f"--token-file {path}: is empty")
    return token
