"""An IsolationForest as plain arrays: saved without pickle, scored many rows at a time.

scikit-learn fits the forest; `PackedForest.from_sklearn` copies what scoring needs (each
node's children, split feature and threshold, and the path length a leaf stands for) into
flat numpy arrays, every tree after the other. `score` walks all rows down all trees at once,
one level per step, and gives exactly `-IsolationForest.score_samples` (a test holds it to
equality): the anomaly score of the original paper, in (0, 1], higher is stranger, about 0.5
for an ordinary row. The arrays go to an `.npz` loaded with `allow_pickle=False`, so loading a
model never runs code, and a scikit-learn upgrade cannot make a saved model unreadable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

LEAF = -1  # scikit-learn's child index at a leaf
ARRAYS = ("children", "feature", "threshold", "value", "roots")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PackedForest:
    """The trees of one fitted IsolationForest, concatenated.

    children      (nodes, 2): left and right child, as global node indices; a leaf's
                  children are itself, so a walk may go on past it and stay put
    feature       the column a node splits on (an index into the full row); 0 at a leaf
    threshold     go left when the row's value (as float32, like scikit-learn) <= threshold;
                  +inf at a leaf
    value         at a leaf: its depth plus the average path length of the training rows
                  that reached it, minus one (what scikit-learn adds up per tree)
    roots         each tree's root node
    denominator   trees times the average path length of `max_samples` rows
    depth         the deepest leaf: a walk of that many steps reaches every leaf
    columns       the row width the forest was fitted on
    """

    children: NDArray[np.int64]
    feature: NDArray[np.int64]
    threshold: NDArray[np.float64]
    value: NDArray[np.float64]
    roots: NDArray[np.int64]
    denominator: float
    depth: int
    columns: int

    @classmethod
    def from_sklearn(cls, forest: Any) -> PackedForest:
        """Copy a fitted `sklearn.ensemble.IsolationForest`."""
        children, features, thresholds, values, roots = [], [], [], [], []
        offset = 0
        depth = 0
        for estimator, columns in zip(forest.estimators_, forest.estimators_features_, strict=True):
            tree = estimator.tree_
            left = np.asarray(tree.children_left, dtype=np.int64)
            right = np.asarray(tree.children_right, dtype=np.int64)
            leaf = left == LEAF
            itself = np.arange(tree.node_count, dtype=np.int64)
            pairs = np.stack([np.where(leaf, itself, left), np.where(leaf, itself, right)], 1)
            children.append(pairs + offset)
            mapped = np.asarray(columns, dtype=np.int64)[np.maximum(tree.feature, 0)]
            features.append(np.where(leaf, 0, mapped))
            thresholds.append(np.where(leaf, np.inf, np.asarray(tree.threshold, np.float64)))
            depths = np.asarray(tree.compute_node_depths(), dtype=np.float64)
            samples = np.asarray(tree.n_node_samples, dtype=np.float64)
            values.append(depths + average_path_length(samples) - 1.0)
            roots.append(offset)
            offset += tree.node_count
            # compute_node_depths counts the root as 1: a leaf at depth d is d - 1 steps down.
            depth = max(depth, int(depths.max()) - 1)
        trees = len(forest.estimators_)
        max_samples = np.asarray([float(forest._max_samples)])
        return cls(
            children=np.concatenate(children),
            feature=np.concatenate(features),
            threshold=np.concatenate(thresholds),
            value=np.concatenate(values),
            roots=np.asarray(roots, dtype=np.int64),
            denominator=float(trees * average_path_length(max_samples)[0]),
            depth=depth,
            columns=int(forest.n_features_in_),
        )

    @property
    def trees(self) -> int:
        return len(self.roots)

    def score(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """Anomaly scores of many rows at once (shape (n, columns) -> (n,))."""
        # scikit-learn compares float32 values with float64 thresholds; so do we.
        x = np.asarray(rows, dtype=np.float32).astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.columns:
            raise ValueError(f"rows of {self.columns} columns expected, got shape {x.shape}")
        n = x.shape[0]
        if n == 0:
            return np.zeros(0)
        # One flat walk over every (row, tree) pair, one level per step.
        node = np.tile(self.roots, n)
        base = np.repeat(np.arange(n, dtype=np.int64) * self.columns, self.trees)
        flat = x.ravel()
        children = self.children.ravel()
        for _ in range(self.depth):
            right = flat[base + self.feature[node]] > self.threshold[node]
            node = children[2 * node + right]
        # Tree by tree, in order, as scikit-learn adds them: the same sums to the last bit.
        leaf_values = self.value[node].reshape(n, self.trees)
        depths = np.zeros(n)
        for tree in range(self.trees):
            depths += leaf_values[:, tree]
        if self.denominator == 0:
            # A forest fitted on one row: scikit-learn divides as if by 1 (2 ** -1).
            return np.full(n, 0.5)
        scores: NDArray[np.float64] = 2.0 ** (-depths / self.denominator)
        return scores

    def arrays(self, prefix: str) -> dict[str, NDArray[Any]]:
        """The forest as named arrays for an .npz file."""
        named: dict[str, NDArray[Any]] = {f"{prefix}{key}": getattr(self, key) for key in ARRAYS}
        named[f"{prefix}shape"] = np.asarray(
            [self.denominator, float(self.depth), float(self.columns)]
        )
        return named

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]], prefix: str) -> PackedForest:
        """Read back what `arrays` wrote; arrays that cannot be a forest raise ValueError."""
        try:
            shape = np.asarray(arrays[f"{prefix}shape"], dtype=np.float64)
            forest = cls(
                children=np.asarray(arrays[f"{prefix}children"], dtype=np.int64),
                feature=np.asarray(arrays[f"{prefix}feature"], dtype=np.int64),
                threshold=np.asarray(arrays[f"{prefix}threshold"], dtype=np.float64),
                value=np.asarray(arrays[f"{prefix}value"], dtype=np.float64),
                roots=np.asarray(arrays[f"{prefix}roots"], dtype=np.int64),
                denominator=float(shape[0]),
                depth=int(shape[1]),
                columns=int(shape[2]),
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"forest {prefix!r}: missing or malformed array ({exc})") from None
        forest.check()
        return forest

    def check(self) -> None:
        """Refuse arrays a walk would index out of bounds with."""
        nodes = len(self.feature)
        if self.children.shape != (nodes, 2):
            raise ValueError("children must have two entries per node")
        if {len(self.threshold), len(self.value)} != {nodes} or len(self.roots) == 0:
            raise ValueError("node arrays of different lengths, or no tree")
        if nodes and (self.children.min() < 0 or self.children.max() >= nodes):
            raise ValueError("a child index outside the forest")
        if self.roots.min() < 0 or self.roots.max() >= nodes:
            raise ValueError("a root outside the forest")
        if nodes and (self.feature.min() < 0 or self.feature.max() >= self.columns):
            raise ValueError("a split on a column the rows do not have")
        if self.depth < 0 or self.depth > nodes:
            raise ValueError("an impossible depth")


def average_path_length(samples: NDArray[np.float64]) -> NDArray[np.float64]:
    """Average path length of an unsuccessful search in a binary tree of `samples` nodes
    (the normalisation of the isolation forest paper; as scikit-learn computes it)."""
    result = np.zeros(samples.shape)
    two = samples == 2
    more = samples > 2
    result[two] = 1.0
    result[more] = (
        2.0 * (np.log(samples[more] - 1.0) + np.euler_gamma)
        - 2.0 * (samples[more] - 1.0) / samples[more]
    )
    return result
