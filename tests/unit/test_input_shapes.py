"""Every shape CloudTrail arrives in, gzip, directories, stdin, and bad input."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from detector.records import BadInput, Record
from detector.sources.files import expand, read_file
from tests.conftest import make_event


def _ids(items: list[Record | BadInput]) -> list[str]:
    return [
        i.value["eventID"] for i in items if isinstance(i, Record) and isinstance(i.value, dict)
    ]


def _read(path: Path) -> list[Record | BadInput]:
    files, _ = expand([str(path)])
    return [item for f in files for item in read_file(f)]


def _events(n: int) -> list[dict]:
    return [make_event(eventID=f"e-{i}") for i in range(n)]


def test_s3_log_file(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps({"Records": _events(3)}))
    items = _read(path)
    assert _ids(items) == ["e-0", "e-1", "e-2"]
    assert [i.origin for i in items] == [f"{path}:Records[{n}]" for n in range(3)]


def test_gzip_s3_log_file_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "111122223333_CloudTrail_us-east-1_20251208T1000Z_abc.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": _events(2)}).encode()))
    assert _ids(_read(path)) == ["e-0", "e-1"]
    odd = tmp_path / "no-suffix"
    odd.write_bytes(gzip.compress(json.dumps({"Records": _events(1)}).encode()))
    assert _ids(_read(odd)) == ["e-0"]


def test_json_array_of_records_and_of_envelopes(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    envelope = {
        "version": "0",
        "detail-type": "AWS API Call via CloudTrail",
        "detail": make_event(eventID="e-9"),
    }
    path.write_text(json.dumps([*_events(2), envelope], indent=2))
    items = _read(path)
    assert _ids(items) == ["e-0", "e-1", "e-9"]
    assert items[2].origin.endswith(":[2].detail")


def test_json_lines_with_mixed_shapes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    envelope = {"detail-type": "AWS API Call via CloudTrail", "detail": make_event(eventID="e-env")}
    lines = [
        json.dumps(make_event(eventID="e-a")),
        "",
        json.dumps(envelope),
        json.dumps({"Records": _events(2)}),
    ]
    path.write_text("\n".join(lines) + "\n")
    items = _read(path)
    assert _ids(items) == ["e-a", "e-env", "e-0", "e-1"]
    assert items[0].origin == f"{path}:line 1"
    assert items[1].origin == f"{path}:line 3:detail"
    assert items[2].origin == f"{path}:line 4:Records[0]"


def test_single_pretty_printed_event_and_envelope(tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_text(json.dumps(make_event(eventID="e-1"), indent=2))
    assert _ids(_read(single)) == ["e-1"]
    envelope = tmp_path / "eb.json"
    envelope.write_text(
        json.dumps(
            {
                "detail-type": "AWS API Call via CloudTrail",
                "source": "aws.s3",
                "detail": make_event(eventID="e-2"),
            },
            indent=2,
        )
    )
    assert _ids(_read(envelope)) == ["e-2"]


def test_non_cloudtrail_envelope_is_rejected_with_reason(tmp_path: Path) -> None:
    path = tmp_path / "eb.json"
    path.write_text(
        json.dumps({"detail-type": "EC2 Instance State-change Notification", "detail": {}})
    )
    (item,) = _read(path)
    assert isinstance(item, BadInput)
    assert "not CloudTrail" in item.reason


def test_bad_line_is_reported_with_line_number_and_good_lines_survive(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        json.dumps(make_event(eventID="ok-1"))
        + "\n{not json\n"
        + json.dumps(make_event(eventID="ok-2"))
        + "\n"
    )
    items = _read(path)
    assert _ids(items) == ["ok-1", "ok-2"]
    bad = [i for i in items if isinstance(i, BadInput)]
    assert len(bad) == 1
    assert bad[0].origin == f"{path}:line 2"
    assert "invalid JSON" in bad[0].reason
    assert bad[0].raw == "{not json"


def test_first_line_broken_still_reads_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "{broken\n"
        + json.dumps(make_event(eventID="ok"))
        + "\n"
        + json.dumps(make_event(eventID="ok2"))
        + "\n"
    )
    assert _ids(_read(path)) == ["ok", "ok2"]


def test_broken_document_is_one_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"Records": [ {"eventID": ')
    (item,) = _read(path)
    assert isinstance(item, BadInput)
    assert item.origin == str(path)


def test_directory_walk_is_recursive_sorted_and_skips_digests(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "2.json").write_text(
        json.dumps({"Records": [make_event(eventID="two")]})
    )
    (tmp_path / "a" / "1.jsonl").write_text(json.dumps(make_event(eventID="one")) + "\n")
    digest = tmp_path / "a" / "111122223333_CloudTrail-Digest_us-east-1_x.json.gz"
    digest.write_bytes(gzip.compress(b"{}"))
    (tmp_path / "notes.txt").write_text("hello")
    files, skipped = expand([str(tmp_path)])
    assert [Path(f.name).name for f in files] == ["1.jsonl", "2.json"]
    assert sorted((Path(s.name).name, s.reason.value) for s in skipped) == sorted(
        [(digest.name, "digest"), ("notes.txt", "not-json")]
    )
    assert [i for f in files for i in _ids(list(read_file(f)))] == ["one", "two"]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        expand([str(tmp_path / "nope.json")])


@pytest.mark.parametrize("payload", ["jsonl", "records", "gzip"])
def test_stdin(payload: str) -> None:
    events = _events(2)
    if payload == "jsonl":
        data = "\n".join(json.dumps(e) for e in events).encode() + b"\n"
    else:
        data = json.dumps({"Records": events}).encode()
        if payload == "gzip":
            data = gzip.compress(data)
    files, _ = expand(["-"])
    items = list(read_file(files[0], stdin=io.BytesIO(data)))
    assert _ids(items) == ["e-0", "e-1"]


def test_large_documents_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the streaming threshold a Records batch or array is read element by element."""
    import detector.sources.files as files_module

    monkeypatch.setattr(files_module, "STREAM_DOCUMENTS_ABOVE", 10)
    batch = tmp_path / "big.json"
    events = _events(5)
    events[3] = "not an object"  # type: ignore[call-overload]
    batch.write_text(json.dumps({"Records": events}, indent=1))
    items = _read(batch)
    assert _ids(items) == ["e-0", "e-1", "e-2", "e-4"]
    assert items[3].origin == f"{batch}:Records[3]"
    array = tmp_path / "big-array.json"
    array.write_text(json.dumps(_events(3)))
    assert _ids(_read(array)) == ["e-0", "e-1", "e-2"]
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps({"Records": _events(3)})[:-40])
    items = _read(truncated)
    assert _ids(items) == ["e-0", "e-1"]
    assert isinstance(items[-1], BadInput) and items[-1].origin.endswith("Records[2]")


def test_progress_reports_bytes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in _events(50)) + "\n")
    seen: list[int] = []
    files, _ = expand([str(path)])
    list(read_file(files[0], progress=seen.append))
    assert sum(seen) == path.stat().st_size


def test_odd_field_types_are_converted_or_named() -> None:
    from detector.core.parse import parse_record
    from detector.errors import ParseError

    # A number where a string belongs is read as text, at the top level and in userIdentity.
    record = make_event(recipientAccountId=111122223333)
    record["userIdentity"]["accountId"] = 111122223333
    event = parse_record(record)
    assert event.recipient_account_id == "111122223333"
    assert event.actor.account_id == "111122223333"
    # An object where a string belongs is an error naming the field.
    with pytest.raises(ParseError, match="'errorCode' must be a string"):
        parse_record(make_event(errorCode={"code": "AccessDenied"}))
    nested = make_event()
    nested["userIdentity"]["invokedBy"] = ["cloudformation.amazonaws.com"]
    with pytest.raises(ParseError, match="'invokedBy' must be a string"):
        parse_record(nested)
