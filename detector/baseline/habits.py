"""What a principal does habitually, read from the action model's counts.

`severity.habitual_step_down` lowers the catalogue's severity of a person's or a service's
call by one step when the call is habitual for its group: the role (session name stripped),
the IAM user or the calling service, never the session alone (a session is minutes old) and
never a wider group (that the account deletes stacks says nothing about this role). Habitual
means the group's decayed count of the action is at least `baseline.habit_calls`: counts
decay with the model's half-life, so a habit left for months fades back to unusual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.baseline.counts import OverlayCounts
from detector.baseline.groups import PRINCIPAL_LEVELS, group_chain, level
from detector.core.policy import EventContext

DEFAULT_CALLS = 5.0
ACTION_FEATURE = 0  # features.FEATURES[0]: the action, lower-cased


def habit_calls(settings: Mapping[str, Any]) -> float:
    """`baseline.habit_calls` as `baseline_settings` checked it, or the default."""
    value = settings.get("habit_calls")
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_CALLS


def habitual(counts: OverlayCounts, ctx: EventContext, action: str, *, calls: float) -> bool:
    """True when the event's role, user or service called `action` at least `calls` times
    (decayed to the event's time), in the fitted counts and what was learned online."""
    principal = next((g for g in group_chain(ctx) if level(g) in PRINCIPAL_LEVELS), None)
    if principal is None:
        return False
    key = (principal, ACTION_FEATURE)
    cell = counts.touched.cells.get(key)
    if cell is None:
        cell = counts.base.cells.get(key)
    entry = cell.values.get(action.lower()) if cell is not None else None
    if entry is None:
        return False
    weight = entry[0] * counts.base.scale(ctx.event.event_time.timestamp())
    return weight >= calls
