"""One object per distinct value, in a table that stays bounded."""

from __future__ import annotations

from detector.core.shared_values import SharedValues


def test_equal_values_come_back_as_the_first_object_seen() -> None:
    shared = SharedValues()
    first = "".join(["arn:aws:iam::111122223333:", "role/deploy"])
    again = "".join(["arn:aws:iam::111122223333:", "role/deploy"])
    assert first is not again
    assert shared(first) is first
    assert shared(again) is first
    assert shared(("a", None, False)) == ("a", None, False)


def test_a_full_table_starts_again_and_still_returns_equal_values() -> None:
    shared = SharedValues(capacity=3)
    values = [f"value-{i}" for i in range(10)]
    assert [shared(v) for v in values] == values
    assert len(shared) <= 3
    late = "".join(["value-", "9"])
    assert shared(late) is values[9]  # kept since the last start
