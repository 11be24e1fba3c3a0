"""The packed IsolationForest scores exactly as scikit-learn does and refuses broken arrays."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from detector.baseline.iforest import PackedForest


def _data(rows: int, seed: int = 1) -> Any:
    rng = np.random.default_rng(seed)
    matrix = rng.lognormal(size=(rows, 13))
    matrix[:, 4] = 0.0  # a feature that never varies: the trees never split on it
    return matrix


@pytest.mark.parametrize(
    ("rows", "max_samples", "max_features"),
    [(700, 256, 1.0), (700, 256, 0.6), (40, 40, 1.0), (3, 3, 1.0), (1, 1, 1.0)],
)
def test_scores_equal_scikit_learn_to_the_last_bit(
    rows: int, max_samples: int, max_features: float
) -> None:
    train = _data(rows)
    forest = IsolationForest(
        n_estimators=50, max_samples=max_samples, max_features=max_features, random_state=0
    ).fit(train)
    packed = PackedForest.from_sklearn(forest)
    probe = np.vstack([train, _data(300, seed=2) * 3, np.zeros((1, 13))])
    assert np.array_equal(packed.score(probe), -forest.score_samples(probe))


def test_the_arrays_round_trip_through_npz_without_pickle() -> None:
    forest = IsolationForest(n_estimators=20, random_state=0).fit(_data(200))
    packed = PackedForest.from_sklearn(forest)
    buffer = io.BytesIO()
    np.savez(buffer, **packed.arrays("f0_"))
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as arrays:
        loaded = PackedForest.from_arrays(arrays, "f0_")
    probe = _data(50, seed=3)
    assert np.array_equal(loaded.score(probe), packed.score(probe))


def test_one_row_and_many_rows_give_the_same_scores() -> None:
    packed = PackedForest.from_sklearn(IsolationForest(random_state=0).fit(_data(300)))
    probe = _data(20, seed=4)
    one_by_one = np.concatenate([packed.score(probe[i : i + 1]) for i in range(len(probe))])
    assert np.array_equal(one_by_one, packed.score(probe))
    assert packed.score(np.zeros((0, 13))).shape == (0,)


@pytest.mark.parametrize(
    ("key", "change", "message"),
    [
        ("children", lambda a: a + 10_000, "child index"),
        ("feature", lambda a: a + 50, "column"),
        ("roots", lambda a: -a - 1, "root"),
        ("value", lambda a: a[:-1], "lengths"),
    ],
)
def test_arrays_that_cannot_be_a_forest_are_refused(key: str, change: Any, message: str) -> None:
    packed = PackedForest.from_sklearn(
        IsolationForest(n_estimators=5, random_state=0).fit(_data(50))
    )
    arrays = packed.arrays("f0_")
    arrays[f"f0_{key}"] = change(arrays[f"f0_{key}"])
    with pytest.raises(ValueError, match=message):
        PackedForest.from_arrays(arrays, "f0_")


def test_a_missing_array_and_rows_of_the_wrong_width_are_refused() -> None:
    packed = PackedForest.from_sklearn(
        IsolationForest(n_estimators=5, random_state=0).fit(_data(50))
    )
    arrays = packed.arrays("f0_")
    del arrays["f0_threshold"]
    with pytest.raises(ValueError, match="missing"):
        PackedForest.from_arrays(arrays, "f0_")
    with pytest.raises(ValueError, match="13 columns"):
        packed.score(np.zeros((2, 12)))
