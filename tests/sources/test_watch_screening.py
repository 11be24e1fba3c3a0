"""The watched directory judges files by content, counts what it skips, and dead-letters."""

from __future__ import annotations

import base64
import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from detector.errors import ConfigError
from detector.metrics import Metrics
from detector.records import Record
from detector.sources.files import UnreadableFile
from tests.conftest import CLOUDTRAIL, DATASETS
from tests.sources.test_watch import IDS, Clock, ids, jsonl, make_source, scan, started

WAIT_SECONDS = 60.0


def _side_files(folder: Path) -> None:
    """One file of each kind that is not CloudTrail."""
    dataset = CLOUDTRAIL / DATASETS[1]
    (folder / "labels.jsonl").write_bytes((dataset / "labels.jsonl").read_bytes())
    (folder / "provenance.json").write_bytes((dataset / "provenance.json").read_bytes())
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "notes.txt").write_text("rotated at 10:00\n")
    (folder / "digest.json").write_text('{"digestPublicKeyFingerprint": "ab", "logFiles": []}')
    (folder / ".partial.json").write_bytes(jsonl(3))
    (folder / "empty.json").write_bytes(b"")
    os.mkfifo(folder / "pipe")


async def test_files_are_judged_by_content_and_each_skip_is_counted_once(tmp_path: Path) -> None:
    _side_files(tmp_path)
    (tmp_path / "trail.log").write_bytes(jsonl(0, 1))  # no CloudTrail suffix: read anyway
    source = await started(make_source(tmp_path))

    [batch] = await scan(source)  # the FIFO is never opened, so this does not block

    assert ids(batch) == IDS[:2]
    expected = {
        "not-cloudtrail": 2,
        "binary": 1,
        "not-json": 1,
        "digest": 1,
        "hidden": 1,
        "empty": 1,
        "special-file": 1,
    }
    assert source.skipped_files == expected
    await batch.ack()
    assert await scan(source) == []
    assert source.skipped_files == expected  # once per file, not once per scan

    # A skipped file that changes is judged again: the empty file has been written.
    (tmp_path / "empty.json").write_bytes(jsonl(2))
    [again] = await scan(source)
    assert ids(again) == IDS[2:3]


async def test_an_empty_file_waits_for_settle_before_it_counts(tmp_path: Path) -> None:
    clock = Clock()
    source = await started(make_source(tmp_path, clock=clock, settle_seconds=2))
    (tmp_path / "new.json").write_bytes(b"")
    assert await scan(source) == []
    assert source.skipped_files == {}
    clock.now += 1
    (tmp_path / "new.json").write_bytes(jsonl(0))  # the writer got going
    clock.now += 2.5
    assert await scan(source) == []  # changed: it settles again first
    clock.now += 2.5
    [batch] = await scan(source)
    assert ids(batch) == IDS[:1]
    assert source.skipped_files == {}


async def test_skipped_files_are_exported_by_reason(tmp_path: Path) -> None:
    _side_files(tmp_path)
    source = await started(make_source(tmp_path))
    metrics = Metrics(sources=["drop"], runtime_collectors=False)
    metrics.watch_sources([source])
    await scan(source)
    samples = {
        labels["reason"]: value
        for name, labels, value in metrics.samples()
        if name == "trailguard_skipped_files_total" and labels["source"] == "drop"
    }
    assert samples["not-cloudtrail"] == 2
    assert samples["special-file"] == 1
    assert samples["empty"] == 1
    assert samples["binary"] == 1


async def test_batches_carry_the_dead_letter(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_bytes(jsonl(0) + b"{oops\n")
    source = await started(make_source(inbox, dead_letter=str(tmp_path / "dead") + "/"))
    [batch] = await scan(source)
    assert batch.dead_letter is not None
    batch.dead_letter.add(origin="a.jsonl:line 2", error="invalid JSON", raw="{oops")
    await batch.ack()
    lines = (tmp_path / "dead" / "a.jsonl.rejected.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["origin"] for line in lines] == ["a.jsonl:line 2"]


def test_a_dead_letter_inside_the_watched_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\.drop\.dead_letter"):
        make_source(tmp_path, dead_letter=str(tmp_path / "rejected"))


async def test_a_truncated_gzip_becomes_one_unreadable_file_after_its_records(
    tmp_path: Path,
) -> None:
    whole = gzip.compress(jsonl(0, 1, 2, 3, 4, 5) * 200)
    (tmp_path / "cut.json.gz").write_bytes(whole[: len(whole) // 2])
    source = await started(make_source(tmp_path))
    [batch] = await scan(source)
    assert isinstance(batch.items[0], Record)
    last = batch.items[-1]
    assert isinstance(last, UnreadableFile)
    assert last.reason.startswith("cannot read the file: truncated gzip")


# --- `trailguard run` end to end ---------------------------------------------------------------


def _run(
    tmp_path: Path, dead_letter: str, batch_records: int
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "trailguard.yaml"
    config.write_text(
        f"""
sources:
  - type: files
    name: inbox
    path: {inbox}
    poll_interval_seconds: 0.1
    settle_seconds: 0
    dead_letter: {dead_letter}
    batch_records: {batch_records}
sinks:
  - type: jsonl
    path: {tmp_path / "out.jsonl"}
state:
  store: sqlite
  path: {tmp_path / "state.db"}
  flush_interval_seconds: 0
http:
  port: 0
log:
  format: json
"""
    )
    bad_utf8 = b'{"eventID": "caf\xe9"}'
    (inbox / "a.jsonl").write_bytes(jsonl(0) + b"{oops\n" + bad_utf8 + b"\n" + jsonl(1))
    whole = gzip.compress(jsonl(2, 3, 4, 5) * 300)
    (inbox / "b.json.gz").write_bytes(whole[: len(whole) // 2])
    (inbox / "labels.jsonl").write_bytes((CLOUDTRAIL / DATASETS[0] / "labels.jsonl").read_bytes())
    log = tmp_path / "run.log"
    command = [sys.executable, "-m", "detector", "run", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    return process, bad_utf8, log


def _letters(paths: list[Path]) -> list[dict[str, object]]:
    return [
        orjson.loads(line)
        for path in paths
        if path.exists()
        for line in path.read_bytes().splitlines()
    ]


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["directory", "file"])
@pytest.mark.parametrize("batch_records", [5000, 100], ids=["one-batch", "several-batches"])
def test_run_dead_letters_rejected_records_and_unreadable_files(
    tmp_path: Path, mode: str, batch_records: int
) -> None:
    """With `batch_records: 100` the truncated gzip is cut after several batches."""
    dead = tmp_path / ("dead" if mode == "directory" else "dead.jsonl")
    if mode == "directory":
        dead.mkdir()
    process, bad_utf8, log = _run(tmp_path, str(dead), batch_records)
    paths = (
        [dead / "a.jsonl.rejected.jsonl", dead / "b.json.gz.rejected.jsonl"]
        if mode == "directory"
        else [dead]
    )
    deadline = time.monotonic() + WAIT_SECONDS
    try:
        while len(_letters(paths)) < 3 and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_SECONDS) == 0, log.read_text()[-3000:]
    letters = {str(letter["origin"]).rsplit("/", 1)[-1]: letter for letter in _letters(paths)}
    assert set(letters) == {"a.jsonl:line 2", "a.jsonl:line 3", "b.json.gz"}
    assert len(_letters(paths)) == 3  # each once
    assert letters["a.jsonl:line 2"]["record"] == "{oops"
    utf8 = letters["a.jsonl:line 3"]
    assert utf8["error"] == "invalid UTF-8: byte 0xe9 at offset 16 of the line"
    assert base64.b64decode(str(utf8["raw_base64"])) == bad_utf8
    assert str(letters["b.json.gz"]["error"]).startswith("cannot read the file: truncated gzip")
    # The labels file was skipped, not rejected line by line.
    assert not any("labels.jsonl" in origin for origin in letters)
