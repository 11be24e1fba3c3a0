"""`trailguard run` on S3 + SQS (moto server): CloudTrail log files in, the findings replay finds.

Two sources at once: a bucket that notifies a queue directly, and one that notifies through
SNS. Each log file holds whole sessions, so the order in which the queues deliver does not
change what is found. A poison object must end in the dead-letter queue, and every message
must be deleted once processed.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote_plus

import orjson
import pytest

from tests.conftest import CLOUDTRAIL, read_jsonl
from tests.kafka.broker import free_port
from tests.moto_aws import REGION, Aws
from tests.scenario import DEMO, as_jsonl, canonical, incident, read_output

pytestmark = pytest.mark.integration
WAIT_SECONDS = 60.0


def _key(index: int, account: str) -> str:
    return (
        f"AWSLogs/{account}/CloudTrail/{REGION}/2025/12/08/"
        f"{account}_CloudTrail_{REGION}_20251208T10{index:02d}Z_x{index:04d}.json.gz"
    )


def test_log_files_through_sqs_yield_what_replay_finds(aws: Aws, tmp_path: Path) -> None:
    otrf = list(read_jsonl(CLOUDTRAIL / "otrf_ec2_proxy_s3_exfiltration" / "events.jsonl"))
    demo = incident()
    replay_input = tmp_path / "all.jsonl"
    replay_input.write_bytes(as_jsonl(demo) + as_jsonl(otrf))
    command = [sys.executable, "-m", "detector", "replay", "--format", "jsonl"]
    command += ["--scopes", str(DEMO / "scopes.yaml"), str(replay_input)]
    expected = [
        orjson.loads(line)
        for line in subprocess.run(command, capture_output=True, check=True).stdout.splitlines()
    ]
    assert any(r["type"] == "response" for r in expected)

    plain = aws.queue("trail-plain")
    via_sns = aws.queue("trail-sns")
    dead = aws.queue("trail-dead")
    aws.bucket_notifying("trail-logs", plain)
    topic = aws.sns.create_topic(Name="trail-topic")["TopicArn"]
    aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=aws.queue_arn(via_sns))
    aws.s3.create_bucket(Bucket="trail-logs-org")
    aws.s3.put_bucket_notification_configuration(
        Bucket="trail-logs-org",
        NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    aws.s3.put_object(
        Bucket="trail-logs",
        Key=_key(1, "111122223333"),
        Body=gzip.compress(orjson.dumps({"Records": demo})),
    )
    aws.s3.put_object(
        Bucket="trail-logs",
        Key=_key(2, "111122223333"),
        Body=b"\x1f\x8b not really gzip",
    )
    aws.s3.put_object(
        Bucket="trail-logs-org",
        Key=_key(3, "123456789123"),
        Body=gzip.compress(orjson.dumps({"Records": otrf})),
    )

    out = tmp_path / "out.jsonl"
    config = tmp_path / "trailguard.yaml"
    config.write_text(
        f"""
scopes: {DEMO / "scopes.yaml"}
sources:
  - type: sqs-s3
    name: plain
    queue_url: {plain}
    region: {REGION}
    endpoint_url: {aws.endpoint}
    wait_time_seconds: 1
    dead_letter_queue_url: {dead}
  - type: sqs-s3
    name: via-sns
    queue_url: {via_sns}
    region: {REGION}
    endpoint_url: {aws.endpoint}
    wait_time_seconds: 1
    dead_letter_queue_url: {dead}
sinks:
  - type: jsonl
    path: {out}
state:
  path: {tmp_path / "state.db"}
  flush_interval_seconds: 1
http:
  port: {free_port()}
"""
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "detector", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "run.log").open("wb"),
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            settled = all(aws.counts(q) == (0, 0) for q in (plain, via_sns))
            if settled and len(read_output(out)) >= len(expected) and aws.counts(dead)[0] == 1:
                break
            time.sleep(0.3)
        else:
            raise AssertionError((tmp_path / "run.log").read_text()[-3000:])
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_SECONDS) == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert canonical(read_output(out)) == canonical(expected)
    poison = aws.take_all(dead)
    assert len(poison) == 1
    assert "not really gzip" not in poison[0]["Body"]  # the notification, not the object
    # S3 notifications URL-encode object keys.
    assert _key(2, "111122223333") in unquote_plus(poison[0]["Body"])
