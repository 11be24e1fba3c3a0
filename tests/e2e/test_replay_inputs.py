"""`trailguard replay` over awkward inputs, as a CI gate runs it: real subprocess, real files."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import orjson

from tests.conftest import CLOUDTRAIL, DATASETS, make_event
from tests.e2e.test_replay_cli import DEMO, records, run


def _jsonl(*ids: str, **fields: object) -> bytes:
    return b"".join(orjson.dumps(make_event(eventID=i, **fields)) + b"\n" for i in ids)


DELETE = {"eventName": "DeleteBucket", "requestParameters": {"bucketName": "b"}, "readOnly": False}


def test_a_truncated_gzip_is_dead_lettered_and_the_files_after_it_are_read(
    tmp_path: Path,
) -> None:
    whole = gzip.compress(_jsonl(*(f"t-{i}" for i in range(500))))
    cut = tmp_path / "1-cut.json.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    after = tmp_path / "2-after.jsonl"
    after.write_bytes(_jsonl("after-1", **DELETE))
    dead = tmp_path / "dead.jsonl"

    result = run("replay", "--format", "jsonl", "--dead-letter", str(dead), str(cut), str(after))

    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    assert f"rejected {cut}: cannot read the file: truncated gzip" in stderr
    assert "Could not read 1 file(s) to the end:" in stderr
    findings = [r for r in records(result.stdout) if r["type"] == "finding"]
    assert "after-1" in {f["event_id"] for f in findings}
    (letter,) = records(dead.read_bytes())
    assert letter["origin"] == str(cut)
    assert letter["error"].startswith("cannot read the file: truncated gzip")
    assert letter["record"] is None
    assert result.returncode == 0
    # --fail-on-rejects turns the same run into a failure a CI gate sees.
    gate = run("replay", "--format", "jsonl", "--fail-on-rejects", str(cut), str(after))
    assert gate.returncode == 4


def test_log_files_are_read_by_content_so_fail_on_gates_them(tmp_path: Path) -> None:
    (tmp_path / "api.log").write_bytes(_jsonl("log-1", **DELETE))
    result = run("replay", "--format", "jsonl", "--fail-on", "low", str(tmp_path))
    assert result.returncode == 3, result.stderr.decode()
    assert {r["event_id"] for r in records(result.stdout) if r["type"] == "finding"} == {"log-1"}


def test_inputs_without_any_event_exit_5_and_say_why(tmp_path: Path) -> None:
    (tmp_path / "notes.log").write_text("deploy finished\n")
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "labels.jsonl").write_bytes(
        (CLOUDTRAIL / DATASETS[0] / "labels.jsonl").read_bytes()[:4000].rsplit(b"\n", 1)[0]
    )
    result = run("replay", "--format", "table", "--fail-on", "low", str(tmp_path))
    assert result.returncode == 5
    text = result.stdout.decode()
    assert "Skipped 3 file(s) that are not CloudTrail:" in text
    assert "1 empty" in text and "1 text that is not JSON" in text
    assert "1 JSON without CloudTrail fields" in text
    assert f"{tmp_path / 'labels.jsonl'}: JSON without CloudTrail fields" in text
    assert "No CloudTrail event in the inputs: nothing was checked." in text
    # Every record rejected is no event either; --fail-on-rejects, asked for, says so first.
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"eventName": "x"}\n{"eventName": "y"}\n')
    assert run("replay", "--format", "jsonl", str(bad)).returncode == 5
    assert run("replay", "--format", "jsonl", "--fail-on-rejects", str(bad)).returncode == 4


def test_a_dataset_directory_skips_labels_and_provenance_without_rejects(tmp_path: Path) -> None:
    copy = tmp_path / "datasets"
    for name in ("zmallen_stratus_2022", "otrf_ec2_proxy_s3_exfiltration"):
        shutil.copytree(CLOUDTRAIL / name, copy / name)
    result = run("replay", "--format", "table", "--fail-on-rejects", str(copy))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    text = result.stdout.decode()
    assert "Replayed 118 events from 2 input(s) (0 duplicates skipped, 0 records rejected)" in text
    assert "Skipped 4 file(s) that are not CloudTrail: 4 JSON without CloudTrail fields" in text


def test_exit_codes_are_in_the_help() -> None:
    text = run("replay", "--help").stdout.decode()
    for line in ("3  --fail-on", "4  --fail-on-rejects", "5  the inputs held no CloudTrail event"):
        assert line in text


def test_the_table_a_person_reads() -> None:
    result = run("demo", "--format", "table")
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    events = [json.loads(line) for line in DEMO.read_text().splitlines()]
    kiro = next(e for e in events if e["eventName"] == "DeleteStack")["userIdentity"]
    assert "(!)" not in text and "…" not in text
    # Session id column; the principal in full (wrapped lines joined back), role and session.
    assert "  session " in text and "ses-" in text
    joined = "".join(line.strip() for line in text.splitlines())
    assert kiro["arn"] in joined
    assert "credentials \"person's\": an agent running on a person's own credentials" in text
    # One line per event with all its reasons: DeleteStack once, both kinds under it.
    heads = [line for line in text.splitlines() if "cloudformation:DeleteStack  by" in line]
    assert len(heads) == 1
    block = text.split(heads[0], 1)[1].split("\n  CRITICAL", 1)[0]
    assert (
        "- out-of-scope-action (critical)" in block and "- destructive-action (critical)" in block
    )
    # 21 findings of scope and catalogue, and the 5 suspicious sequences of the rebuild.
    assert "10 of 14 events shown (22 of 26 findings); every finding: --format jsonl" in text
    # The API Gateway deletion names its API.
    api = next(e for e in events if e["eventName"] == "DeleteRestApi")
    rest_api = api["requestParameters"]["restApiId"]
    assert f"on arn:aws:apigateway:us-east-1::/restapis/{rest_api}" in text
    assert text.rstrip().splitlines()[-1].strip()  # ends with steps, not a blank table
    steps = text.split("What to do next:\n", 1)[1]
    assert "1. Revoke session ses-" in steps and "(dry run)" in steps
    assert "Ask alice@example.com whether agent kiro was meant to run on their credentials" in steps
