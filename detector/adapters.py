"""Imports every built-in adapter so that each registers itself under its user-facing name."""

from __future__ import annotations

import importlib

BUILT_IN = (
    "detector.sinks.jsonl",
    "detector.sinks.alertmanager",
    "detector.sinks.pagerduty",
    "detector.sinks.slack",
    "detector.sinks.webhook",
    "detector.sources.kafka",
    "detector.sources.sqs_s3",
    "detector.sources.lookup",
    "detector.sources.watch",
    "detector.state",
    "detector.responders.revoke_session",
    "detector.responders.access_key",
    "detector.responders.role_sessions",
)


def load_adapters() -> None:
    for module in BUILT_IN:
        importlib.import_module(module)
