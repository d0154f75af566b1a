"""Tree ensembles as arrays (qa.trees): each split followed, LightGBM reproduced, table equals walk."""

import json

import numpy as np
import pytest

from qa.decide import FEATURES, MODEL_VERSION, AnswerModel, load_model
from qa.errors import AnswerModelError
from qa.trees import TABLE_SPLITS, Trees


def test_tree_arrays_follow_each_split():
    """Two trees over features 0 and 1: tree 1 splits x0 <= 0.5 into leaves 1.0 / 2.0; tree 2 splits
    x1 <= 0.25, then (left) x0 <= 0.1 into -1.0 / 0.5, (right) leaf 3.0."""
    dump = {"tree_info": [
        {"tree_structure": {"split_feature": 0, "threshold": 0.5, "decision_type": "<=",
                            "left_child": {"leaf_value": 1.0}, "right_child": {"leaf_value": 2.0}}},
        {"tree_structure": {"split_feature": 1, "threshold": 0.25, "decision_type": "<=",
                            "left_child": {"split_feature": 0, "threshold": 0.1, "decision_type": "<=",
                                           "left_child": {"leaf_value": -1.0}, "right_child": {"leaf_value": 0.5}},
                            "right_child": {"leaf_value": 3.0}}}]}
    trees = Trees.from_lightgbm(dump)
    rows = np.zeros((4, len(FEATURES)))
    rows[:, 0] = [0.0, 0.3, 0.5, 0.9]
    rows[:, 1] = [0.0, 0.2, 0.9, 0.25]
    expected = [1.0 + -1.0, 1.0 + 0.5, 1.0 + 3.0, 2.0 + 0.5]
    assert trees.raw(rows).tolist() == expected
    again = Trees.from_json(json.loads(json.dumps(trees.to_json())), len(FEATURES))
    assert again.raw(rows).tolist() == expected


def test_tree_arrays_equal_lightgbm_on_a_fitted_model():
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    x = rng.random((400, len(FEATURES)))
    y = (x[:, 0] + 0.5 * x[:, 3] - x[:, 5] + rng.normal(0, 0.2, 400) > 0.3).astype(int)
    booster = lgb.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1, random_state=0).fit(x, y)
    trees = Trees.from_lightgbm(booster.booster_.dump_model())
    assert np.allclose(trees.raw(x), booster.predict_proba(x, raw_score=True), atol=1e-9)


def test_tree_arrays_walk_trees_too_big_for_a_table():
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(2)
    x = rng.random((400, len(FEATURES)))
    y = (x[:, 0] * x[:, 2] + 0.5 * x[:, 3] - x[:, 5] + rng.normal(0, 0.2, 400) > 0.1).astype(int)
    booster = lgb.LGBMClassifier(n_estimators=20, num_leaves=TABLE_SPLITS + 4, min_child_samples=5, verbose=-1,
                                 random_state=0).fit(x, y)
    trees = Trees.from_lightgbm(booster.booster_.dump_model())
    assert trees._table is None  # walked, not tabled
    assert np.allclose(trees.raw(x), booster.predict_proba(x, raw_score=True), atol=1e-9)


def test_shipped_trees_score_the_same_by_table_and_by_walk(monkeypatch):
    data = load_model().to_json()["scorer"]
    tabled = Trees.from_json(data, len(FEATURES))
    monkeypatch.setattr("qa.trees.TABLE_SPLITS", 0)
    walked = Trees.from_json(data, len(FEATURES))
    assert tabled._table is not None and walked._table is None
    rows = np.random.default_rng(3).random((300, len(FEATURES))) * 4 - 2
    assert np.allclose(tabled.raw(rows), walked.raw(rows), rtol=0, atol=1e-12)  # summed in another order


@pytest.mark.parametrize("left, right, message", [
    ([[1, 0, 0]], [[2, 0, 0]], None),  # a proper stump
    ([[5, 0, 0]], [[2, 0, 0]], "outside their tree"),
    ([[0, 0, 0]], [[0, 0, 0]], "do not form trees"),  # the root is its own child
])
def test_broken_tree_arrays_are_refused(left, right, message):
    """One tree: node 0 splits on feature 0 at 0.5, nodes 1 and 2 are leaves 1.0 and 2.0."""
    data = {"kind": "trees", "depth": 1, "feature": [[0, -1, -1]], "threshold": [[0.5, 0.0, 0.0]],
            "left": left, "right": right, "value": [[0.0, 1.0, 2.0]]}
    if message is None:
        assert Trees.from_json(data, 1).raw(np.array([[0.2], [0.9]])).tolist() == [1.0, 2.0]
        return
    with pytest.raises(ValueError, match=message):
        Trees.from_json(data, 1)
    broken = {"version": MODEL_VERSION, "features": list(FEATURES), "platt": {"a": 1.0, "c": 0.0}, "threshold": 0.5,
              "scorer": data}
    with pytest.raises(AnswerModelError, match="malformed"):
        AnswerModel.from_json(broken)
