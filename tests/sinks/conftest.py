"""Fixtures for the paging sinks: a real receiver, and the demo incident's contract records."""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from detector.config import Settings
from detector.core.pipeline import StepResult
from detector.replay import replay
from detector.sinks.jsonl import step_records
from detector.sources.files import InputFile
from detector.wiring import build_pipeline
from tests.sinks.receiver import Receiver

KIRO = "ses-3cdc3999faa2cd89"


def demo_records(*, responses_enabled: bool) -> list[dict[str, Any]]:
    """What the pipeline writes for the bundled incident, in contract order."""
    demo = importlib.resources.files("detector") / "data" / "demo"
    with importlib.resources.as_file(demo) as folder:
        settings = Settings(responses=Settings().responses.__class__(enabled=responses_enabled))
        pipeline = build_pipeline(settings, scopes_path=Path(folder) / "scopes.yaml")
        events = Path(folder) / "incident.jsonl"
        records: list[dict[str, Any]] = []

        def keep(result: StepResult) -> None:
            records.extend(step_records(result))

        replay(
            pipeline,
            [InputFile(str(events), events, events.stat().st_size)],
            on_result=keep,
            on_reject=lambda *_: None,
        )
    return records


@pytest.fixture(scope="session")
def incident_records() -> list[dict[str, Any]]:
    return demo_records(responses_enabled=True)


@pytest.fixture(scope="session")
def dry_run_records() -> list[dict[str, Any]]:
    return demo_records(responses_enabled=False)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()
