"""The shipped AWS CLI operation index against botocore's own service models."""

from __future__ import annotations

import botocore
import pytest

from detector.gate.cli_index import INDEX_PATH, find_service, index_version, kebab
from detector.gate.index_build import build


def test_the_index_is_what_botocore_builds() -> None:
    shipped = INDEX_PATH.read_text(encoding="utf-8")
    if index_version(shipped) != botocore.__version__:
        pytest.fail(
            f"the index was built from botocore {index_version(shipped)} but "
            f"{botocore.__version__} is installed: run python -m detector.gate.index_build"
        )
    assert shipped == build()


def test_lookups_of_renamed_and_plain_services() -> None:
    text = "\n" + INDEX_PATH.read_text(encoding="utf-8")
    s3 = find_service(text, "s3api")
    assert s3 is not None and s3.operations["delete-bucket"] == "DeleteBucket"
    assert find_service(text, "s3") is None  # the high-level commands are not a model
    rds = find_service(text, "rds")
    assert rds is not None and rds.operations["delete-db-cluster"] == "DeleteDBCluster"
    cloudwatch = find_service(text, "cloudwatch")
    assert cloudwatch is not None and cloudwatch.event_source == "monitoring.amazonaws.com"
    assert find_service(text, "") is None and find_service(text, "a b") is None


def test_kebab_matches_the_cli_for_ordinary_names() -> None:
    assert kebab("DescribeStacks") == "describe-stacks"
    assert kebab("DeleteDBCluster") == "delete-db-cluster"
