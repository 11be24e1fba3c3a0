"""Privilege changes indexed by whom they empower, for uses in any session.

A privilege change and its use are often in different sessions: a key created by one is used
by a session of its own, a trust policy rewritten by one is assumed by another. The index
maps identity keys (see `detector.core.sequence_steps.Grant`) to the grants made to them, and
to the sessions that act as them, so a use finds its grant and a grant that arrives late finds
the uses already seen.
"""

from __future__ import annotations

from collections.abc import Mapping

from detector.core.sequence_state import SessionState
from detector.core.sequence_steps import Step

MAX_HOLDERS = 32  # sessions remembered per identity, the most recent


class GrantIndex:
    def __init__(self) -> None:
        # identity key -> [(granting session, grant step)], oldest first
        self._grants: dict[str, list[tuple[str, Step]]] = {}
        # identity key -> sessions that act as it, oldest first
        self._holders: dict[str, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self._grants)

    def add(self, grant: Step) -> None:
        for key in grant.grant.keys if grant.grant else ():
            self._grants.setdefault(key, []).append((grant.session_id, grant))

    def remove(self, grant: Step) -> None:
        for key in grant.grant.keys if grant.grant else ():
            entries = self._grants.get(key)
            if entries is not None:
                entries[:] = [(s, g) for s, g in entries if g is not grant]
                if not entries:
                    del self._grants[key]

    def any_for(self, *keys: tuple[str, ...]) -> bool:
        grants = self._grants
        return any(key in grants for group in keys for key in group)

    def grants_for(self, key: str) -> tuple[tuple[str, Step], ...]:
        return tuple(self._grants.get(key, ()))

    def hold(self, key: str, session_id: str) -> None:
        holders = self._holders.setdefault(key, [])
        if session_id not in holders:
            holders.append(session_id)
            del holders[:-MAX_HOLDERS]

    def release(self, key: str, session_id: str) -> None:
        holders = self._holders.get(key)
        if holders is not None and session_id in holders:
            holders.remove(session_id)
            if not holders:
                del self._holders[key]

    def holders_of(self, key: str) -> tuple[str, ...]:
        return tuple(self._holders.get(key, ()))

    def __len__(self) -> int:
        """Identity keys that hold grants."""
        return len(self._grants)

    def rebuild(self, sessions: Mapping[str, SessionState]) -> None:
        """The index of `sessions` as restored: their grants, oldest first, and the sessions
        that act as each identity, the most recently active last.

        Derived rather than saved: it names every identity a live session acts as, so a
        snapshot holding it would write it whole at every flush whatever changed.
        """
        self._grants = {}
        kept = [grant for state in sessions.values() for grant in state.grants]
        for grant in sorted(kept, key=lambda grant: grant.at):
            self.add(grant)
        self._holders = {}
        for session_id, state in sorted(sessions.items(), key=lambda item: item[1].high):
            for key in state.identities:
                self.hold(key, session_id)
            for call in state.calls:
                for key in call.uses:
                    self.hold(key, session_id)


def uses_of(state: SessionState, key: str) -> list[Step]:
    """The steps of a session that may use a privilege given to `key`."""
    if key.startswith(("assume:", "login:")):
        return [s for s in state.calls if key in s.uses]
    found = [*state.writes, *state.read_steps()]
    if state.first is not None:
        found.append(state.first)  # a new key's first call is its first use
    return found
