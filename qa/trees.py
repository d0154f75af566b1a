"""Boosted regression trees as plain arrays: LightGBM's models scored without LightGBM.

The answer decision (qa/decide.py) and the learned ranker (qa/rank.py) both sum small trees over a
few dozen candidates per question. Scoring them here, by table, costs a few array operations; LightGBM's
own `Booster.predict` costs more per call inside an ask (docs/ranking.md, Cost), and the answer model
is stored as these arrays in JSON so serving it needs no LightGBM at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TABLE_SPLITS = 6  # trees with at most this many splits are scored by a 2**splits table per tree


@dataclass(frozen=True)
class Trees:
    """A sum of regression trees (LightGBM's, rewritten as arrays so serving needs no LightGBM):
    raw(x) = sum over trees t of value[t, leaf_t(x)], where a node n of tree t sends x left when
    x[feature[t, n]] <= threshold[t, n] and a node with feature -1 is a leaf.

    Small trees (at most TABLE_SPLITS splits each: the answer model's 4 leaves have 3, the ranker's 7 have 6) are evaluated
    by table: every split of every tree is tested at once, the answers of tree t's splits form a
    number b, and leaf_value[t, b] was found once by walking the tree with those answers. Larger trees
    are walked, all at once, one level per step."""

    feature: np.ndarray  # (trees, nodes) int, -1 for leaves
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    depth: int

    def __post_init__(self):
        arrays = (self.feature, self.threshold, self.left, self.right, self.value)
        if len({a.shape for a in arrays}) != 1 or self.feature.ndim != 2:
            raise ValueError("tree arrays of mismatched shapes")
        trees, nodes = self.feature.shape
        split = self.feature >= 0
        if nodes == 0 or ((self.left < 0) | (self.left >= nodes) | (self.right < 0) | (self.right >= nodes))[split].any():
            raise ValueError("tree arrays whose children lie outside their tree")
        splits = [np.flatnonzero(split[t]) for t in range(trees)]
        width = max((len(x) for x in splits), default=0)
        if width <= TABLE_SPLITS:
            # Unused split slots test x[0] <= inf; no walk reads their answer bit.
            feature, threshold = np.zeros((trees, width), np.int64), np.full((trees, width), np.inf)
            table = np.zeros((trees, 1 << width))
            for t in range(trees):
                bit = {n: k for k, n in enumerate(splits[t])}
                feature[t, :len(splits[t])] = self.feature[t, splits[t]]
                threshold[t, :len(splits[t])] = self.threshold[t, splits[t]]
                for b in range(1 << width):
                    n, steps = 0, 0
                    while self.feature[t, n] >= 0:
                        n = self.left[t, n] if (b >> bit[n]) & 1 else self.right[t, n]
                        steps += 1
                        if steps > len(splits[t]):  # a path longer than the tree's splits goes round a cycle
                            raise ValueError("tree arrays that do not form trees")
                    table[t, b] = self.value[t, n]
            object.__setattr__(self, "_table", (feature.ravel(), threshold.ravel(), 1 << np.arange(width),
                                                table.ravel(), np.arange(trees) << width, width))
            return
        # The same trees as flat arrays indexed by t * nodes + n, where a leaf sends x to itself on both
        # sides: each level of the walk is then four gathers and one comparison, with no leaf test.
        object.__setattr__(self, "_table", None)
        base = (np.arange(trees) * nodes)[:, None]
        leaf = ~split
        here = base + np.arange(nodes)[None, :]
        object.__setattr__(self, "_flat", (
            np.where(leaf, 0, self.feature).ravel(), np.where(leaf, np.inf, self.threshold).ravel(),
            np.where(leaf, here, base + self.left).ravel(), np.where(leaf, here, base + self.right).ravel(),
            self.value.ravel(), base.ravel()))

    def raw(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=float)
        n = len(rows)
        if self._table is not None:
            feature, threshold, weights, table, offsets, width = self._table
            answers = (rows[:, feature] <= threshold).reshape(n, len(offsets), width)
            return table[(answers * weights).sum(axis=2) + offsets].sum(axis=1)
        feature, threshold, left, right, value, roots = self._flat
        flat_rows = rows.ravel()
        row_base = (np.arange(n) * rows.shape[1])[:, None]
        node = np.broadcast_to(roots, (n, len(roots)))
        for _ in range(self.depth):
            goes_left = flat_rows[row_base + feature[node]] <= threshold[node]
            node = np.where(goes_left, left[node], right[node])
        return value[node].sum(axis=1)

    @classmethod
    def from_lightgbm(cls, dump: dict) -> "Trees":
        """From `Booster.dump_model()` of a model on numerical features without missing values (a split
        that treats zero as missing would route x == 0 otherwise, so it is refused)."""
        tables = []
        for info in dump["tree_info"]:
            rows: list[list] = []  # feature, threshold, left, right, value

            def add(node: dict) -> int:
                at = len(rows)
                rows.append([-1, 0.0, 0, 0, float(node.get("leaf_value", 0.0))])
                if "split_feature" in node:
                    if node.get("decision_type", "<=") != "<=" or node.get("missing_type") == "Zero":
                        raise ValueError(f"unsupported split {node.get('decision_type')} ({node.get('missing_type')})")
                    left, right = add(node["left_child"]), add(node["right_child"])
                    rows[at] = [int(node["split_feature"]), float(node["threshold"]), left, right, 0.0]
                return at

            add(info["tree_structure"])
            tables.append(rows)
        width = max(len(r) for r in tables)
        padded = [r + [[-1, 0.0, 0, 0, 0.0]] * (width - len(r)) for r in tables]
        arr = np.array(padded, dtype=float)
        depth = max(_depth(info["tree_structure"]) for info in dump["tree_info"])
        return cls(arr[:, :, 0].astype(np.int64), arr[:, :, 1], arr[:, :, 2].astype(np.int64),
                   arr[:, :, 3].astype(np.int64), arr[:, :, 4], depth)

    def to_json(self) -> dict:
        return {"kind": "trees", "depth": self.depth, "feature": self.feature.tolist(),
                "threshold": self.threshold.tolist(), "left": self.left.tolist(), "right": self.right.tolist(),
                "value": self.value.tolist()}

    @classmethod
    def from_json(cls, data: dict, width: int) -> "Trees":
        """From to_json(); `width` is the number of features the rows have (a split on a later one is refused)."""
        model = cls(np.asarray(data["feature"], np.int64), np.asarray(data["threshold"], float),
                    np.asarray(data["left"], np.int64), np.asarray(data["right"], np.int64),
                    np.asarray(data["value"], float), int(data["depth"]))
        if model.feature.max() >= width:
            raise ValueError("tree arrays that split on a feature the rows lack")
        return model


def _depth(node: dict) -> int:
    if "split_feature" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))
