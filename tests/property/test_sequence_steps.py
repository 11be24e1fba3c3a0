"""A sequence step written to saved state reads back as the same step, whatever it holds:
a restart must not change what the patterns see."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from detector.core.sequence_state import keep
from detector.core.sequence_steps import Grant, Step

_text = st.text(min_size=1, max_size=12)
# Each optional field is left at its default about half the time: most real steps leave
# most of them there, and saved state writes those steps shorter.
_texts = st.just(()) | st.lists(_text, min_size=1, max_size=3).map(tuple)
_noun = st.just("") | _text

_grants = st.none() | st.builds(
    Grant, keys=_texts, actions=st.none() | _texts, label=st.text(max_size=12)
)


@st.composite
def _steps(draw: st.DrawFn) -> Step:
    action = draw(_text)
    # As the pipeline makes them: the action's own expansion, or just the action.
    actions = draw(st.sampled_from([(), (action,)]) | st.lists(_text, min_size=1, max_size=3))
    return Step(
        event_id=draw(_text),
        at=draw(
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))
        ).replace(tzinfo=UTC),
        session_id="s",
        action=action,
        resource=draw(st.none() | _text),
        marks=draw(st.integers(min_value=0, max_value=1023)),
        keys=draw(_texts),
        noun=draw(_noun),
        uses=draw(_texts),
        actions=tuple(actions),
        grant=draw(_grants),
    )


@given(_steps())
def test_a_step_survives_saved_state_exactly(step: Step) -> None:
    back = Step.from_list(orjson.loads(orjson.dumps(step.to_list())), "s")
    # No actions of its own means just the action, as a restored step says.
    assert back == step._replace(actions=step.actions or (step.action,))


@given(
    st.lists(st.integers(min_value=0, max_value=5), max_size=12),
    st.integers(min_value=2, max_value=6),
)
def test_kept_steps_are_the_newest_in_time_order_whatever_holds_them(
    minutes: list[int], cap: int
) -> None:
    """Short lists are tuples, longer ones lists grown in place: the steps are the same."""
    start = datetime(2025, 12, 8, tzinfo=UTC)
    steps = [
        Step(event_id=f"e{n}", at=start + timedelta(minutes=m), session_id="s", action="a",
             resource=None, marks=0)
        for n, m in enumerate(minutes)
    ]  # fmt: skip
    kept: Sequence[Step] = ()
    dropped: list[Step] = []
    for step in steps:
        kept = keep(kept, step, cap, dropped.append)
        assert len(kept) <= cap
    # Stable: steps of one time stay in arrival order, as bisect.insort keeps them.
    ordered = sorted(steps, key=lambda s: s.at)
    assert list(kept) == ordered[len(ordered) - len(kept) :]
    assert sorted([*dropped, *kept], key=lambda s: (s.at, s.event_id)) == sorted(
        steps, key=lambda s: (s.at, s.event_id)
    )
