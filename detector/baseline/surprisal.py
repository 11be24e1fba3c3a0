"""How surprising a value is for a chain of groups: hierarchical back-off, in bits.

The probability of a value is estimated from the most general group up to the most
specific (Witten-Bell smoothing): each group mixes its own counts with its parent's
estimate, weighted by how often the group meets new values (the decayed weight of the
calls that were a value's first use in the group). A group with no history leaves its
parent's estimate unchanged, so a session seen for the first time is scored exactly as its
role, a new role as its agent kind or account.
At the top, the global group backs off to a uniform share over the values it has seen plus
one for "never seen".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from detector.baseline.counts import CountTable

# Below this decayed weight a group counts as having no history for a feature.
EMPTY = 1e-9
SESSION = "session"


class Counts(Protocol):
    def value(self, group: str, feature: int, value: str, at: float) -> tuple[float, int]: ...

    def total(self, group: str, feature: int, at: float) -> tuple[float, int, float]: ...


def surprisal(
    counts: Counts,
    chain: Sequence[str],
    feature: int,
    value: str,
    at: float,
    *,
    own: float = 0.0,
    session: CountTable | None = None,
    session_prior: float = 20.0,
) -> float:
    """-log2 P(value) for the groups in `chain` (most specific first, "global" last).

    own       the event's own weight, taken out of every group's counts, to score a
              training event as if it had not been seen (leave-one-out calibration)
    session   the session's own counts, mixed in last with a fixed prior weight. They only
              ever make a value more familiar: a session is narrow, and its first use of
              what its role does often is not news
    """
    probability = 1.0
    for depth, group in enumerate(reversed(chain)):
        count, raw = counts.value(group, feature, value, at)
        total, distinct, novelty = counts.total(group, feature, at)
        if own:
            count = max(0.0, count - own)
            total = max(0.0, total - own)
            if raw == 1:
                # The event was this value's first use: without it, the value is unseen.
                distinct -= 1
                novelty = max(0.0, novelty - own)
        if depth == 0:
            probability = 1.0 / (distinct + 1)
        if total <= EMPTY:
            continue
        # Rounding can leave no novelty at all; a zero probability has no surprisal.
        novelty = max(novelty, EMPTY)
        probability = (count + novelty * probability) / (total + novelty)
    if session is not None:
        count, _ = session.value(SESSION, feature, value, at)
        total, _, _ = session.total(SESSION, feature, at)
        if total > EMPTY:
            mixed = (count + session_prior * probability) / (total + session_prior)
            probability = max(probability, mixed)
    return -math.log2(probability)
