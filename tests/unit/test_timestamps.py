"""CloudTrail's time text, cached per instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from detector.core.timestamps import iso_micros, iso_seconds


@given(st.datetimes(timezones=st.timezones()))
def test_an_aware_time_is_written_in_utc_to_the_second(value: datetime) -> None:
    assert iso_seconds(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_same_instant_in_another_zone_gives_the_same_text_whichever_came_first() -> None:
    utc = datetime(2025, 12, 1, 9, 30, 5, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert paris == utc and hash(paris) == hash(utc)  # one cache entry for both
    assert iso_seconds(paris) == iso_seconds(utc) == "2025-12-01T09:30:05Z"


def test_a_naive_time_is_taken_as_utc() -> None:
    assert iso_seconds(datetime(2025, 12, 1, 9, 30, 5, 999_999)) == "2025-12-01T09:30:05Z"


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 31), timezones=st.timezones()
    )
)
def test_the_store_text_keeps_microseconds_and_sorts_as_the_times_do(value: datetime) -> None:
    assert iso_micros(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert iso_micros(value + timedelta(microseconds=1)) > iso_micros(value)
