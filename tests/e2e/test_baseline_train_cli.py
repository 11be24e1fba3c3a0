"""`trailguard baseline train` and `show` as a user runs them: real subprocesses, real files,
and an S3 bucket on a moto server on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.baseline.artifact import load_artifact
from tests.baseline.history import (
    ACCOUNT,
    DEPLOYER,
    START,
    call,
    history,
    training_events,
    write_jsonl,
)
from tests.moto_aws import Aws

ROLE_GROUP = f"role:arn:aws:iam::{ACCOUNT}:role/{DEPLOYER}"
ATTACK = [
    call(DEPLOYER, f"{DEPLOYER}-run-5", action, START + timedelta(days=5, hours=16, seconds=i),
         params=params)
    for i, (action, params) in enumerate([
        ("iam:CreateUser", {"userName": "backdoor"}),
        ("iam:CreateAccessKey", {"userName": "backdoor"}),
        ("iam:AttachUserPolicy", {"userName": "backdoor",
                                  "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ])
]  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detector", "baseline", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def manifest(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    return loaded


def counts(directory: Path) -> dict[str, int]:
    loaded: dict[str, int] = manifest(directory)["models"][0]["counts"]
    return loaded


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return sorted(history() + ATTACK, key=lambda r: str(r["eventTime"]))


@pytest.fixture(scope="module")
def trail(records: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("trail") / "trail.jsonl", records)


def _s3_layout(records: list[dict[str, Any]]) -> dict[str, bytes]:
    """CloudTrail's own layout: one gzip `{"Records": [...]}` object per day and region."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        day = str(record["eventTime"])[:10].replace("-", "/")
        by_day.setdefault(day, []).append(record)
    prefix = f"AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1"
    objects = {
        f"{prefix}/{day}/{ACCOUNT}_CloudTrail_eu-west-1_{day.replace('/', '')}T0000Z_x.json.gz":
            gzip.compress(orjson.dumps({"Records": day_records}))
        for day, day_records in by_day.items()
    }  # fmt: skip
    digest = f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/eu-west-1/2025/03/04/digest.json.gz"
    objects[digest] = gzip.compress(b'{"digestPublicKeyFingerprint": "x"}')
    return objects


def test_train_from_a_file_writes_an_artifact_that_show_checks(trail: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = run("train", "--output", str(out), str(trail))
    assert result.returncode == 0, result.stderr
    total = len(history())
    assert (
        f"trained action-frequency on {total:,} events (3 left out for findings at or above "
        "medium" in result.stdout
    )
    assert "manifest sha256: " in result.stdout
    pinned = result.stdout.split("manifest sha256: ")[1].split()[0]
    window = manifest(out)["window"]
    assert (window["events"], window["excluded"]) == (total, 3)
    assert window["start"] == min(str(r["eventTime"]) for r in history())
    shown = run("show", str(out), "--sha256", pinned)
    assert shown.returncode == 0, shown.stderr
    assert (
        "model action-frequency (schema 1)" in shown.stdout and "thresholds (bits)" in shown.stdout
    )
    params = out / "action-frequency" / "params.json"
    params.write_text(params.read_text().replace('"quantile"', '"quantile" '))
    refused = run("show", str(out))
    assert refused.returncode == 1
    assert f"refused: {params}: sha256" in refused.stderr


def test_events_that_raised_findings_are_not_learned_unless_the_cut_off_says_so(
    trail: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    assert run("train", "--output", str(out), str(trail)).returncode == 0
    model = load_artifact(out).models["action-frequency"]
    attack = training_events([ATTACK[0]])
    assert model.score(attack)[0] > 0, "the backdoor user is novel: it was never learned"
    everything = tmp_path / "everything"
    result = run("train", "--output", str(everything), "--exclude-at", "critical", str(trail))
    assert result.returncode == 0, result.stderr
    assert manifest(everything)["window"]["excluded"] == 0
    assert counts(everything)[ROLE_GROUP] == counts(out)[ROLE_GROUP] + len(ATTACK)


def test_since_and_until_bound_the_window(trail: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    since, until = "2025-03-05", "2025-03-08T00:00:00Z"
    result = run("train", "--output", str(out), "--since", since, "--until", until, str(trail))
    assert result.returncode == 0, result.stderr
    window = manifest(out)["window"]
    assert window["start"] >= "2025-03-05T00:00:00Z" and window["end"] < "2025-03-08T00:00:00Z"
    expected = sum(1 for r in history() if "2025-03-05" <= str(r["eventTime"]) < "2025-03-08")
    assert window["events"] == expected
    assert "outside the window" in result.stdout


def test_a_directory_of_cloudtrail_log_files_trains_the_same_model_as_one_file(
    records: list[dict[str, Any]], trail: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "logs"
    for key, body in _s3_layout(records).items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(body)
    from_dir, from_file = tmp_path / "dir-model", tmp_path / "file-model"
    result = run("train", "--output", str(from_dir), str(folder))
    assert result.returncode == 0, result.stderr
    assert run("train", "--output", str(from_file), str(trail)).returncode == 0
    assert counts(from_dir) == counts(from_file)
    assert manifest(from_dir)["sha256"] == manifest(from_file)["sha256"], "same fit, same bytes"


@pytest.mark.integration
def test_train_from_an_s3_prefix(
    records: list[dict[str, Any]], trail: Path, tmp_path: Path, aws: Aws
) -> None:
    aws.s3.create_bucket(Bucket="trail")
    for key, body in _s3_layout(records).items():
        aws.s3.put_object(Bucket="trail", Key=key, Body=body)
    from_s3, from_file = tmp_path / "s3-model", tmp_path / "file-model"
    result = run("train", "--output", str(from_s3), "--endpoint-url", aws.endpoint,
                 f"s3://trail/AWSLogs/{ACCOUNT}/")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert run("train", "--output", str(from_file), str(trail)).returncode == 0
    assert counts(from_s3) == counts(from_file)
    assert manifest(from_s3)["source"] == f"s3://trail/AWSLogs/{ACCOUNT}/"
    windowed = tmp_path / "windowed"
    result = run("train", "--output", str(windowed), "--endpoint-url", aws.endpoint,
                 "--since", "2025-03-10", "s3://trail")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert manifest(windowed)["window"]["start"] >= "2025-03-10"
    # Objects filed more than a day before --since are never fetched, so never counted.
    assert "0 outside the window" not in result.stdout
    missing = run("train", "--output", str(tmp_path / "x"), "--endpoint-url", aws.endpoint,
                  "s3://no-such-bucket/prefix")  # fmt: skip
    assert missing.returncode == 1
    assert "cannot list s3://no-such-bucket/prefix: NoSuchBucket" in missing.stderr
    assert not (tmp_path / "x").exists()


def test_usage_errors_and_an_empty_history(trail: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"meow")
    refused = run("train", "--output", str(photos), str(trail))
    assert refused.returncode == 2 and "is not a baseline artifact" in refused.stderr
    unknown = run("train", "--output", str(tmp_path / "m"), "--models", "deep-thought", str(trail))
    assert unknown.returncode == 2 and "unknown baseline model 'deep-thought'" in unknown.stderr
    backwards = run("train", "--output", str(tmp_path / "m"), "--since", "2025-03-09",
                    "--until", "2025-03-01", str(trail))  # fmt: skip
    assert backwards.returncode == 2 and "--since must be before --until" in backwards.stderr
    no_bucket = run("train", "--output", str(tmp_path / "m"), "s3://")
    assert no_bucket.returncode == 2 and "an S3 path is s3://bucket" in no_bucket.stderr
    empty = run("train", "--output", str(tmp_path / "m"), "--since", "2030-01-01", str(trail))
    assert empty.returncode == 5 and "no event to train on" in empty.stderr
    assert not (tmp_path / "m").exists()
    again = tmp_path / "again"
    assert run("train", "--output", str(again), str(trail)).returncode == 0
    twice = run("train", "--output", str(again), str(trail))
    assert twice.returncode == 2 and "--force" in twice.stderr
    assert run("train", "--output", str(again), "--force", str(trail)).returncode == 0


@pytest.mark.parametrize("command", [[], ["train"], ["show"], ["bench"]])
def test_every_baseline_command_lists_its_exit_codes_in_help(command: list[str]) -> None:
    done = run(*command, "--help")
    assert done.returncode == 0
    epilog = done.stdout.split("exit codes:", 1)[1]
    assert "  0  " in epilog and "  2  " in epilog
