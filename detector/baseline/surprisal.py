"""How surprising a value is for a chain of groups: hierarchical back-off, in bits.

The probability of a value is estimated from the most general group up to the most
specific (Witten-Bell smoothing): each group mixes its own counts with its parent's
estimate, weighted by how often the group meets new values (the decayed weight of the
calls that were a value's first use in the group). A group with no history leaves its
parent's estimate unchanged, so a session seen for the first time is scored exactly as its
role, a new role as its agent kind or account. At the top, the global group backs off to a
uniform share over the values it has seen plus one for "never seen".

This runs for every feature of every event, so it reads the cells directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from detector.baseline.counts import CountTable

# Below this many (decayed) calls a group counts as having no history for a feature.
EMPTY = 1e-9
SESSION = "session"


def surprisals(
    base: CountTable,
    touched: CountTable | None,
    chain: Sequence[str],
    values: Sequence[str],
    at: float,
    *,
    own: float = 0.0,
    session: CountTable | None = None,
    session_prior: float = 20.0,
    familiar: Sequence[bool] | None = None,
) -> list[float]:
    """-log2 P(value) of each feature's value for the groups in `chain` (most specific
    first, "global" last), from the fitted `base` or, where they changed online, the cells
    in `touched` (see `counts.OverlayCounts`).

    own       the event's own weight, taken out of every group's counts, to score a
              training event as if it had not been seen (leave-one-out calibration)
    session   the session's own counts, mixed in last with a fixed prior weight. They only
              ever make a value more familiar: a session is narrow, and its first use of
              what its role does often is not news
    familiar  per group of `chain`, True where the group's counts may only make a value
              more familiar, never less: groups a shipped prior knows nothing of, whose
              novelty its thresholds were not calibrated for
    """
    scale = base.scale(at)
    fitted = base.cells
    changed = touched.cells if touched is not None and touched.cells else None
    ordered = tuple(reversed(chain))
    lenient = tuple(reversed(familiar)) if familiar is not None else (False,) * len(chain)
    found: list[float] = []
    for feature, value in enumerate(values):
        probability = -1.0
        for group, only_familiar in zip(ordered, lenient, strict=True):
            key = (group, feature)
            cell = changed.get(key) if changed is not None else None
            if cell is None:
                cell = fitted.get(key)
            if cell is None:
                if probability < 0:
                    probability = 1.0  # no global counts at all: nothing is known
                continue
            total, novelty, distinct = cell.weight, cell.novel, cell.distinct
            entry = cell.values.get(value)
            count, raw = entry if entry is not None else (0.0, 0.0)
            if own:
                count = max(0.0, count - own)
                total = max(0.0, total - own)
                if raw == 1.0:
                    # The event was this value's first use: without it, the value is unseen.
                    distinct -= 1
                    novelty = max(0.0, novelty - own)
            if probability < 0:
                probability = 1.0 / (distinct + 1)
            if total * scale <= EMPTY:
                continue
            if novelty <= 0.0:
                # Rounding can leave no novelty at all; a zero probability has no surprisal.
                novelty = total * 1e-12
            mixed = (count + novelty * probability) / (total + novelty)
            probability = max(probability, mixed) if only_familiar else mixed
        if probability < 0:
            probability = 1.0
        if session is not None:
            probability = _familiar(session, feature, value, probability, scale, session_prior)
        found.append(-math.log2(probability))
    return found


def clearly_usual(
    base: CountTable,
    touched: CountTable | None,
    chain: Sequence[str],
    values: Sequence[str],
    at: float,
    floors: Sequence[float],
) -> bool:
    """True when every feature's probability is surely at least its floor, judged from the
    most specific group with history alone: a group's estimate is never below
    count / (total + novelty), whatever its parents say (and a session only raises it).
    Most events are this; only the others need `surprisals`."""
    scale = base.scale(at)
    fitted = base.cells
    changed = touched.cells if touched is not None else {}
    for feature, value in enumerate(values):
        for group in chain:
            key = (group, feature)
            cell = changed.get(key) or fitted.get(key)
            if cell is None or cell.weight * scale <= EMPTY:
                continue
            entry = cell.values.get(value)
            novelty = cell.novel if cell.novel > 0.0 else cell.weight * 1e-12
            if entry is None or entry[0] / (cell.weight + novelty) < floors[feature]:
                return False
            break
        else:
            return False
    return True


def _familiar(
    session: CountTable, feature: int, value: str, probability: float, scale: float, prior: float
) -> float:
    cell = session.cells.get((SESSION, feature))
    if cell is None or cell.weight * scale <= EMPTY:
        return probability
    entry = cell.values.get(value)
    count = entry[0] * scale if entry is not None else 0.0
    mixed = (count + prior * probability) / (cell.weight * scale + prior)
    return max(probability, mixed)
