"""Inputs judged by content, and read errors that end one file, never the run."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
from pathlib import Path

import orjson
import pytest

from detector.dead_letter import DeadLetterFile
from detector.errors import ParseError
from detector.records import BadInput, Record
from detector.sources.files import UnreadableFile, expand, read_input
from detector.sources.screen import SkipReason, judge, screen
from tests.conftest import CLOUDTRAIL, DATASETS, make_event

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256))
DIGEST = {
    "awsAccountId": "111122223333",
    "digestStartTime": "2025-12-08T09:00:00Z",
    "digestEndTime": "2025-12-08T10:00:00Z",
    "digestS3Bucket": "trail-bucket",
    "digestPublicKeyFingerprint": "ab12",
    "digestSignatureAlgorithm": "SHA256withRSA",
    "logFiles": [],
}


def _jsonl(*ids: str) -> bytes:
    return b"".join(orjson.dumps(make_event(eventID=i)) + b"\n" for i in ids)


def _read_all(paths: list[str]) -> list[Record | BadInput]:
    files, _ = expand(paths)
    return [item for f in files for item in read_input(f)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", SkipReason.EMPTY),
        (b"  \n\n", SkipReason.EMPTY),
        (PNG, SkipReason.BINARY),
        (b"# notes\nnothing to see\n", SkipReason.NOT_JSON),
        (json.dumps(DIGEST).encode(), SkipReason.DIGEST),
        (b'{"eventID": "e-1", "source_file": "a.json", "activity_class": "x"}\n' * 3, None),
        (json.dumps({"Records": [make_event()]}).encode(), None),
        (b"{broken\n" + _jsonl("a"), None),
        (json.dumps([make_event()], indent=2).encode(), None),
    ],
    ids=["empty", "blank", "png", "text", "digest", "labels", "records", "broken-first", "array"],
)
def test_judge_by_content(content: bytes, reason: SkipReason | None) -> None:
    if content.startswith(b'{"eventID"'):
        # A labels file keyed by eventID carries no CloudTrail field: not CloudTrail.
        reason = SkipReason.NOT_CLOUDTRAIL
    assert judge(content) == reason


@pytest.mark.parametrize("dataset", DATASETS)
def test_dataset_side_files_are_not_cloudtrail_and_events_are(dataset: str) -> None:
    folder = CLOUDTRAIL / dataset
    assert screen(folder / "labels.jsonl") is SkipReason.NOT_CLOUDTRAIL
    assert screen(folder / "provenance.json") is SkipReason.NOT_CLOUDTRAIL
    assert screen(folder / "events.jsonl") is None


def test_a_dataset_directory_reads_events_and_skips_the_rest_with_reasons() -> None:
    files, skipped = expand([str(CLOUDTRAIL)])
    assert sorted(Path(f.name).relative_to(CLOUDTRAIL).as_posix() for f in files) == sorted(
        f"{name}/events.jsonl" for name in DATASETS
    )
    reasons = {Path(s.name).relative_to(CLOUDTRAIL).as_posix(): s.reason for s in skipped}
    assert reasons.pop("README.md") is SkipReason.NOT_JSON
    assert set(reasons.values()) == {SkipReason.NOT_CLOUDTRAIL}
    assert len(reasons) == 2 * len(DATASETS)


def test_a_log_suffix_is_read_when_it_holds_cloudtrail(tmp_path: Path) -> None:
    """Names do not decide: `.log`, `.txt` and no suffix are read when the content is CloudTrail."""
    (tmp_path / "trail.log").write_bytes(_jsonl("a", "b"))
    (tmp_path / "batch.txt").write_bytes(gzip.compress(_jsonl("c")))
    (tmp_path / "noext").write_text(json.dumps({"Records": [make_event(eventID="d")]}))
    (tmp_path / "digest.json").write_text(json.dumps(DIGEST))
    (tmp_path / ".hidden.jsonl").write_bytes(_jsonl("h"))
    files, skipped = expand([str(tmp_path)])
    assert sorted(Path(f.name).name for f in files) == ["batch.txt", "noext", "trail.log"]
    assert {Path(s.name).name: s.reason for s in skipped} == {
        "digest.json": SkipReason.DIGEST,
        ".hidden.jsonl": SkipReason.HIDDEN,
    }
    ids = [i.value["eventID"] for i in _read_all([str(tmp_path)]) if isinstance(i, Record)]
    assert sorted(ids) == ["a", "b", "c", "d"]


def test_a_named_file_is_judged_by_content_too(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes((CLOUDTRAIL / DATASETS[0] / "labels.jsonl").read_bytes()[:5000])
    files, skipped = expand([str(labels)])
    assert files == []
    assert [(s.name, s.reason) for s in skipped] == [(str(labels), SkipReason.NOT_CLOUDTRAIL)]


def test_a_truncated_gzip_keeps_its_records_reports_the_file_and_the_next_is_read(
    tmp_path: Path,
) -> None:
    whole = gzip.compress(_jsonl(*(f"t-{i}" for i in range(400))))
    cut = tmp_path / "a-cut.json.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    (tmp_path / "b-good.jsonl").write_bytes(_jsonl("after"))

    items = _read_all([str(cut), str(tmp_path / "b-good.jsonl")])

    unreadable = [i for i in items if isinstance(i, UnreadableFile)]
    assert len(unreadable) == 1
    assert unreadable[0].origin == str(cut)
    assert unreadable[0].reason.startswith("cannot read the file: truncated gzip")
    ids = [i.value["eventID"] for i in items if isinstance(i, Record)]
    assert ids[0] == "t-0" and 0 < len(ids) - 1 < 400
    assert ids[-1] == "after"


def test_a_corrupt_gzip_is_one_unreadable_file(tmp_path: Path) -> None:
    whole = bytearray(gzip.compress(_jsonl(*(f"c-{i}" for i in range(50)))))
    whole[20:40] = b"\xff" * 20
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(whole))
    items = _read_all([str(path)])
    assert isinstance(items[-1], UnreadableFile)
    assert items[-1].reason.startswith("cannot read the file: corrupt gzip")
    assert all(isinstance(i, Record) for i in items[:-1])


def test_fifo_device_and_broken_link_in_a_directory_are_unreadable_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "null").symlink_to("/dev/null")
    (tmp_path / "gone.json").symlink_to(tmp_path / "missing.json")
    (tmp_path / "ok.jsonl").write_bytes(_jsonl("ok"))

    items = _read_all([str(tmp_path)])  # would block forever if the FIFO were opened

    reasons = {Path(i.origin).name: i.reason for i in items if isinstance(i, UnreadableFile)}
    assert reasons == {
        "gone.json": "cannot read the file: No such file or directory",
        "null": "cannot read the file: it is a character device, not a regular file",
        "pipe": "cannot read the file: it is a FIFO, not a regular file",
    }
    assert [i.value["eventID"] for i in items if isinstance(i, Record)] == ["ok"]


def test_a_named_pipe_on_the_command_line_is_read_as_a_stream(tmp_path: Path) -> None:
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_bytes(_jsonl("p-1", "p-2")))
    writer.start()
    items = _read_all([str(pipe)])
    writer.join(timeout=10)
    assert [i.value["eventID"] for i in items if isinstance(i, Record)] == ["p-1", "p-2"]


def test_an_io_error_is_an_unreadable_file_and_the_next_file_is_read(tmp_path: Path) -> None:
    # Reading /proc/self/mem from offset 0 fails with EIO, for root too: a real I/O error.
    broken = tmp_path / "a-mem.json"
    broken.symlink_to("/proc/self/mem")
    (tmp_path / "b.jsonl").write_bytes(_jsonl("next"))
    items = _read_all([str(tmp_path)])
    assert isinstance(items[0], UnreadableFile)
    assert (items[0].origin, items[0].reason) == (
        str(broken),
        "cannot read the file: Input/output error",
    )
    assert [i.value["eventID"] for i in items[1:] if isinstance(i, Record)] == ["next"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.jsonl"
    path.write_bytes(_jsonl("s"))
    path.chmod(0)
    (item,) = _read_all([str(path)])
    assert isinstance(item, UnreadableFile)
    assert item.reason == "cannot read the file: Permission denied"


def test_invalid_utf8_names_the_byte_and_its_offset_and_keeps_the_bytes(tmp_path: Path) -> None:
    bad = b'{"eventID": "caf\xe9", "eventName": "x"}'
    path = tmp_path / "trail.jsonl"
    path.write_bytes(_jsonl("a") + bad + b"\n" + _jsonl("b"))
    items = _read_all([str(path)])
    (rejected,) = [i for i in items if isinstance(i, BadInput)]
    assert rejected.origin == f"{path}:line 2"
    assert rejected.reason == "invalid UTF-8: byte 0xe9 at offset 16 of the line"
    assert "surrogates" not in rejected.reason
    assert rejected.raw == bad

    out = io.BytesIO()
    DeadLetterFile(out).add(origin=rejected.origin, error=rejected.reason, raw=rejected.raw)
    letter = orjson.loads(out.getvalue())
    assert letter["record"] is None
    assert base64.b64decode(letter["raw_base64"]) == bad


def test_invalid_utf8_in_a_whole_document_names_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    document = json.dumps({"Records": [make_event()]}).encode()
    at = document.index(b"dana")
    path.write_bytes(document[:at] + b"\xc3\x28" + document[at + 2 :])
    (item,) = _read_all([str(path)])
    assert isinstance(item, BadInput)
    assert item.reason == f"invalid UTF-8: byte 0xc3 at offset {at}"


def test_a_record_without_user_identity_is_rejected_with_the_field_named() -> None:
    from detector.core.parse import parse_record

    record = make_event()
    del record["userIdentity"]
    with pytest.raises(ParseError, match="missing required field 'userIdentity'"):
        parse_record(record)
    with pytest.raises(ParseError, match="userIdentity is empty"):
        parse_record({**record, "userIdentity": {}})
    insight = {**record, "eventType": "AwsCloudTrailInsight"}
    with pytest.raises(ParseError, match="Insights event"):
        parse_record(insight)
