"""Routing keys for the keyed topic: whole credential chains land on one partition.

`trailguard route` republishes every raw CloudTrail record keyed by its routing key, so that
the `trailguard run` instances of one consumer group each own whole sessions. A session is a
credential set, and attribution follows chains: the role session an agent assumed is judged
with what is known about the session that assumed it. So the key is not the session's own
key but its chain's root: credentials minted by an STS call route with the caller's root.

Children seen before the call that minted them (CloudTrail delivers out of order) route by
their own key until the link arrives; the table is bounded and snapshotted with the
router's offsets so a restart keeps the chains it learned.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from detector.core.credentials import is_minting
from detector.core.events import CloudTrailEvent


def own_key(event: CloudTrailEvent) -> str:
    """The key of the event's own credential set, before any chain is followed."""
    actor = event.actor
    if actor.access_key_id:
        return f"key:{actor.access_key_id}"
    account = actor.account_id or event.recipient_account_id or ""
    who = actor.arn or actor.principal_id or actor.invoked_by or actor.user_name or "anonymous"
    return f"principal:{account}:{who}"


class RoutingTable:
    """Minted access key → the routing key of the chain it belongs to."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._roots: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._roots)

    def route(self, event: CloudTrailEvent) -> str:
        """The routing key of the event; learns the chain when the event mints credentials."""
        key = own_key(event)
        root = self._roots.get(key, key)
        if is_minting(event):
            minted = _minted_key(event)
            if minted is not None:
                self._roots[f"key:{minted}"] = root
                self._roots.move_to_end(f"key:{minted}")
                while len(self._roots) > self.capacity:
                    self._roots.popitem(last=False)
        return root

    def snapshot(self) -> dict[str, Any]:
        return {"roots": dict(self._roots)}

    def restore(self, data: Mapping[str, Any]) -> None:
        self._roots = OrderedDict(data.get("roots", {}))


def _minted_key(event: CloudTrailEvent) -> str | None:
    credentials = event.response_elements.get("credentials")
    if isinstance(credentials, Mapping):
        key = credentials.get("accessKeyId")
        if isinstance(key, str) and key:
            return key
    return None
