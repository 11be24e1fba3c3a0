"""Items kept as JSON bytes (a processed batch packed, Kafka messages as they came) come back
as they were."""

from __future__ import annotations

import gc

import orjson

from detector.records import BadInput, EncodedMessages, PackedItems, Record
from detector.sources.files import decode_records
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


def test_encoded_messages_decode_each_message_as_the_kafka_source_did_at_each_iteration() -> None:
    messages = [
        ("t/0@0", orjson.dumps(RECORDS[0])),
        ("t/0@1", orjson.dumps({"Records": RECORDS[1:3]})),
        ("t/0@2", b"{not json"),
        ("t/0@3", orjson.dumps(RECORDS[3])),
    ]
    tombstone = BadInput("t/0@4", "empty message (tombstone)", None)
    box = EncodedMessages(decode_records)
    for origin, data in messages:
        box.append(origin, data)
    box.reject(tombstone)

    expected = [item for origin, data in messages for item in decode_records(origin, data)]
    expected.append(tombstone)
    assert box.messages == 5
    assert list(box) == expected
    assert list(box) == expected  # a batch re-applied after a rollback decodes again
    assert [item.origin for item in box] == [
        "t/0@0", "t/0@1:Records[0]", "t/0@1:Records[1]", "t/0@2", "t/0@3", "t/0@4"
    ]  # fmt: skip
    bad = [item for item in box if isinstance(item, BadInput)]
    assert bad[0].reason.startswith("invalid JSON") and bad[1] is tombstone
