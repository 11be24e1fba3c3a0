"""The stored form of a snapshot."""

from __future__ import annotations

import zlib
from types import MappingProxyType

import orjson
import pytest

from detector.errors import StateError
from detector.state.store import decode_snapshot, encode_snapshot
from tests.state.pipelines import pipeline_with_sessions


def test_a_snapshot_is_zlib_compressed_orjson() -> None:
    snapshot = pipeline_with_sessions(10).snapshot()
    blob = encode_snapshot(snapshot)
    assert orjson.loads(zlib.decompress(blob)) == snapshot
    assert len(blob) < len(orjson.dumps(snapshot)) / 3
    assert decode_snapshot(blob) == snapshot


def test_any_mapping_can_be_encoded() -> None:
    assert decode_snapshot(encode_snapshot(MappingProxyType({"a": [1, 2]}))) == {"a": [1, 2]}


@pytest.mark.parametrize(
    "blob",
    [b"not zlib", zlib.compress(b"{not json"), zlib.compress(b"[1, 2]")],
)
def test_a_damaged_blob_is_a_state_error(blob: bytes) -> None:
    with pytest.raises(StateError):
        decode_snapshot(blob)
