"""Session features: what a session's row says, its bounds, its state and its milestones."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from detector.baseline.session_features import (
    FEATURE_NAMES,
    MAX_DISTINCT,
    SessionFeatures,
    is_milestone,
    scaled,
)
from detector.core.policy import make_finding
from detector.core.taxonomy import Severity
from tests.session_history import START, _record, training_events


def _row(features: SessionFeatures) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, features.row(), strict=True))


def test_a_row_counts_variety_shares_errors_and_time() -> None:
    records = [
        _record(1, 0, START, "s3.amazonaws.com", "ListBuckets"),
        _record(1, 1, START + timedelta(seconds=30), "s3.amazonaws.com", "DeleteBucket",
                params={"bucketName": "logs"}),
        _record(1, 2, START + timedelta(seconds=60), "iam.amazonaws.com", "AttachRolePolicy",
                params={"roleName": "app", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        _record(1, 3, START + timedelta(seconds=240), "ec2.amazonaws.com", "DescribeInstances",
                region="eu-west-1"),
    ]  # fmt: skip
    records[3]["errorCode"] = "Client.UnauthorizedOperation"
    features = SessionFeatures()
    for event in training_events(records):
        features.update(event.ctx, event.findings)
    row = _row(features)
    assert row["event_count"] == 4
    assert row["distinct_services"] == 3 and row["distinct_actions"] == 4
    assert row["write_ratio"] == 0.5  # the delete and the policy attachment
    assert row["destroy_ratio"] == 0.25 and row["permissions_ratio"] == 0.25
    assert row["error_ratio"] == 0.25
    assert row["region_count"] == 2
    assert row["duration"] == 240
    assert row["call_rate"] == 1.0  # four calls in four minutes
    assert row["resource_spread"] >= 2  # the bucket and the role at least


def test_a_short_session_is_rated_over_a_minute_and_events_may_come_out_of_order() -> None:
    records = [
        _record(2, 0, START + timedelta(seconds=20), "s3.amazonaws.com", "ListBuckets"),
        _record(2, 1, START, "s3.amazonaws.com", "ListBuckets"),
    ]
    features = SessionFeatures()
    for event in training_events(records):
        features.update(event.ctx, event.findings)
    row = _row(features)
    assert row["duration"] == 20
    assert row["call_rate"] == 2.0


def test_novel_action_findings_are_counted_and_other_findings_are_not() -> None:
    event = training_events([_record(3, 0, START, "s3.amazonaws.com", "ListBuckets")])[0]
    novel = make_finding(
        event.ctx, kind="novel-action", severity=Severity.LOW, classification=None, reason="new"
    )
    other = make_finding(
        event.ctx, kind="destructive-action", severity=Severity.LOW, classification=None, reason=""
    )
    features = SessionFeatures()
    features.update(event.ctx, (novel, other, novel))
    assert _row(features)["novel_action_count"] == 2


def test_distinct_values_stop_counting_at_the_cap() -> None:
    records = [
        _record(4, n, START + timedelta(seconds=n), "s3.amazonaws.com", "GetObject",
                params={"bucketName": "b", "key": f"k{n}"})
        for n in range(MAX_DISTINCT + 20)
    ]  # fmt: skip
    features = SessionFeatures()
    for event in training_events(records):
        features.update(event.ctx, event.findings)
    assert len(features.resources) == MAX_DISTINCT
    assert _row(features)["event_count"] == MAX_DISTINCT + 20


def test_snapshot_and_restore_give_the_same_row_and_the_same_updates() -> None:
    events = training_events(
        [
            _record(5, n, START + timedelta(seconds=7 * n), "s3.amazonaws.com", name)
            for n, name in enumerate(["ListBuckets", "GetBucketAcl", "DeleteBucket", "ListBuckets"])
        ]
    )
    original = SessionFeatures()
    for event in events[:2]:
        original.update(event.ctx, event.findings)
    restored = SessionFeatures.restore(original.snapshot())
    assert restored.row() == original.row()
    for event in events[2:]:
        original.update(event.ctx, event.findings)
        restored.update(event.ctx, event.findings)
    assert restored.row() == original.row()
    assert restored.snapshot() == original.snapshot()


def test_milestones_are_powers_of_two_then_a_steady_pace() -> None:
    hits = [n for n in range(0, 300) if is_milestone(n, 64)]
    assert hits == [1, 2, 4, 8, 16, 32, 64, 128, 192, 256]
    assert [n for n in range(1, 40) if is_milestone(n, 10)] == [1, 2, 4, 8, 10, 20, 30]


def test_counts_are_log_scaled_and_ratios_are_not() -> None:
    row = [float(i) for i in range(len(FEATURE_NAMES))]
    out = dict(zip(FEATURE_NAMES, scaled(row), strict=True))
    assert out["event_count"] == 0.0
    assert out["distinct_services"] == pytest.approx(math.log1p(1))
    assert out["write_ratio"] == 3.0
    assert out["region_count"] == pytest.approx(math.log1p(12))
