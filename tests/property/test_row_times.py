"""A time a part leaves in a state row is written as the snapshot writes it: a row and the
whole snapshot must say the same, byte for byte, or a restore from rows would differ."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from detector.core.state_delta import encode_row
from detector.core.timestamps import iso_instant

_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1))


@given(at=_times)
def test_a_time_in_a_row_is_its_iso_instant(at: datetime) -> None:
    aware = at.replace(tzinfo=UTC)
    assert encode_row(aware) == orjson.dumps(iso_instant(aware))
    text = iso_instant(aware)
    assert encode_row({"t": [aware, (aware,)]}) == orjson.dumps({"t": [text, [text]]})
    # Naive times are UTC to the snapshot too.
    assert encode_row(at) == orjson.dumps(iso_instant(at))
    assert datetime.fromisoformat(orjson.loads(encode_row(aware))) == aware
