"""The stored form of a snapshot."""

from __future__ import annotations

import zlib
from types import MappingProxyType

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.errors import StateError
from detector.state import store
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


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=9) | st.dictionaries(st.text(max_size=5), children, max_size=9)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON)
def test_encoding_in_pieces_is_byte_for_byte_one_orjson_call(value: object) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "PIECE_ITEMS", 2)  # so that small values are cut too
        assert store.dumps_in_pieces(value) == orjson.dumps(value)


def test_a_real_snapshot_is_encoded_in_pieces_as_one_call_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    snapshot = pipeline_with_sessions(300).snapshot()
    monkeypatch.setattr(store, "PIECE_ITEMS", 7)
    assert store.dumps_in_pieces(snapshot) == orjson.dumps(snapshot)


def test_a_key_json_cannot_hold_is_refused_as_one_call_would() -> None:
    with pytest.raises(TypeError):
        store.dumps_in_pieces({1: "a"})
    with pytest.raises(StateError, match="not JSON-serialisable"):
        encode_snapshot({"a": {2: "b"}})
