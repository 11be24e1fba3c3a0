"""A processed batch's items packed as JSON bytes come back as they were."""

from __future__ import annotations

import gc

import orjson

from detector.records import BadInput, PackedItems, Record
from tests.sources.test_watch import RECORDS


def test_packed_items_come_back_equal_and_in_order() -> None:
    items: list[Record | BadInput] = [Record(f"f:line {i}", r) for i, r in enumerate(RECORDS)]
    items.insert(2, BadInput("f:line x", "invalid JSON", b"{oops"))
    box = PackedItems(items)
    assert len(box) == len(items)
    assert list(box) == items
    assert [box[i] for i in range(len(items))] == items
    assert box[1:3] == items[1:3]
    assert box[-1] == items[-1]


def test_a_value_json_cannot_hold_is_kept_as_it_is() -> None:
    huge = Record("f:Records[0]", {"eventID": "x", "bytes": 2**70})  # ijson reads such ints
    box = PackedItems([huge, Record("f:Records[1]", {"eventID": "y"})])
    assert list(box) == [huge, Record("f:Records[1]", {"eventID": "y"})]


def test_packed_records_are_not_objects_the_collector_tracks() -> None:
    records = [Record(f"f:{i}", orjson.loads(orjson.dumps(r))) for i, r in enumerate(RECORDS)]
    box = PackedItems(records)
    # What the collector walks for the box: its two lists, holding untracked str and bytes.
    lists = [value for value in gc.get_referents(box) if isinstance(value, list)]
    assert len(lists) == 2
    assert not any(gc.is_tracked(value) for value in gc.get_referents(*lists))
    assert all(gc.is_tracked(record.value) for record in records)


def test_items_appended_one_by_one_are_kept_in_order() -> None:
    box = PackedItems()
    box.append(Record("f:1", RECORDS[0]))
    box.append(BadInput("f:2", "invalid JSON", "{oops"))
    assert list(box) == [Record("f:1", RECORDS[0]), BadInput("f:2", "invalid JSON", "{oops")]
