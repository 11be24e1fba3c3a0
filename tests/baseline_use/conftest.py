"""An artifact trained once per session on the synthetic history, shared by these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.baseline_use.artifact import train
from tests.baseline_use.history import history


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(history(), tmp_path_factory.mktemp("baseline") / "artifact")
