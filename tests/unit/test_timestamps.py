"""CloudTrail's time text, cached per instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from detector.core.timestamps import iso_instant, iso_micros, iso_seconds


@given(st.datetimes(timezones=st.timezones()))
def test_an_aware_time_is_written_in_utc_to_the_second(value: datetime) -> None:
    assert iso_seconds(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_same_instant_in_another_zone_gives_the_same_text() -> None:
    utc = datetime(2025, 12, 1, 9, 30, 5, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
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
    # In UTC: wall-clock arithmetic in a zone drops `fold` and can land on another instant.
    assert iso_micros(value.astimezone(UTC) + timedelta(microseconds=1)) > iso_micros(value)


def test_the_hour_repeated_when_clocks_go_back_gives_two_instants_not_one() -> None:
    zone = ZoneInfo("Europe/Paris")
    first = datetime(2025, 10, 26, 2, 30, tzinfo=zone)  # CEST, +02:00
    second = first.replace(fold=1)  # CET, +01:00: an hour later, equal on the wall clock
    assert first == second
    assert (iso_seconds(first), iso_seconds(second)) == (
        "2025-10-26T00:30:00Z",
        "2025-10-26T01:30:00Z",
    )


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 31), timezones=st.timezones()
    )
)
def test_saved_state_reads_back_the_same_instant_as_an_aware_utc_time(value: datetime) -> None:
    text = iso_instant(value)
    back = datetime.fromisoformat(text)
    assert back.tzinfo is UTC
    # Against the UTC time: a wall-clock time a zone skips has no one instant to compare.
    assert back == value.astimezone(UTC)
    # The microseconds are written only when there are some, as isoformat does.
    assert ("." in text) == bool(value.microsecond)
