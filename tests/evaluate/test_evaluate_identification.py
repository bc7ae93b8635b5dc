from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from phenoseq.errors import InputError
from phenoseq.evaluate import (
    balanced_accuracy,
    fuse,
    gap_closure,
    treatment_identification,
)
from phenoseq.evaluate.identification import _confusion


def blobs(n_per: int, n_classes: int, d: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(scale=spread, size=(n_classes, d))
    y = np.repeat([f"t{i}" for i in range(n_classes)], n_per)
    x = centres[np.repeat(np.arange(n_classes), n_per)] + rng.normal(size=(len(y), d))
    return x, y


def test_separable_classes_are_identified():
    train_X, train_y = blobs(40, 4, 6, spread=6.0, seed=0)
    test_X, test_y = blobs(30, 4, 6, spread=6.0, seed=1)
    out = treatment_identification(train_X, train_y, test_X, test_y)
    assert out.balanced_accuracy > 0.95 and out.converged
    assert out.labels == ["t0", "t1", "t2", "t3"]
    assert out.confusion.shape == (4, 4) and out.confusion.sum() == len(test_y)
    assert out.predictions.shape == (len(test_y),) and out.kept.all()


def test_shuffled_labels_give_chance():
    # training labels permuted on features without class structure: labels carry no
    # information about the features, so balanced accuracy is near chance (1/4). (With
    # clustered features a permutation maps whole clusters to labels and the score of one
    # permutation swings widely around 1/4.)
    train_X, train_y = blobs(150, 4, 6, spread=0.0, seed=0)
    test_X, test_y = blobs(150, 4, 6, spread=0.0, seed=1)
    shuffled = np.random.default_rng(2).permutation(train_y)
    out = treatment_identification(train_X, shuffled, test_X, test_y)
    assert abs(out.balanced_accuracy - 0.25) < 0.06


def test_unseen_test_classes_are_dropped_and_same_seed_same_result():
    train_X, train_y = blobs(30, 3, 4, spread=5.0, seed=0)
    test_X, test_y = blobs(10, 4, 4, spread=5.0, seed=1)  # t3 is unseen
    out = treatment_identification(train_X, train_y, test_X, test_y, seed=3)
    assert out.labels == ["t0", "t1", "t2"]
    np.testing.assert_array_equal(out.kept, test_y != "t3")
    assert len(out.predictions) == 30 and out.confusion.sum() == 30
    again = treatment_identification(train_X, train_y, test_X, test_y, seed=3)
    np.testing.assert_array_equal(out.predictions, again.predictions)


def test_identification_rejects_bad_input():
    x, y = blobs(5, 2, 3, spread=1.0, seed=0)
    with pytest.raises(InputError, match="class"):
        treatment_identification(x, np.full(len(y), "a"), x, y)
    with pytest.raises(InputError, match="columns"):
        treatment_identification(x, y, x[:, :2], y)
    with pytest.raises(InputError, match="no test label"):
        treatment_identification(x, y, x, np.full(len(y), "zzz"))
    with pytest.raises(InputError, match="one label per row"):
        treatment_identification(x, y[:-1], x, y)


def test_balanced_accuracy_hand_value():
    true = np.array(["a", "a", "a", "a", "b", "b"])
    pred = np.array(["a", "a", "a", "b", "b", "a"])
    # recall a = 3/4, recall b = 1/2 -> 0.625 (plain accuracy would be 4/6)
    conf = _confusion(true, pred, np.array(["a", "b", "c"]))
    np.testing.assert_array_equal(conf, [[3, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert balanced_accuracy(conf) == pytest.approx(0.625)
    assert balanced_accuracy(conf) == pytest.approx(balanced_accuracy_score(true, pred))


def test_gap_closure_arithmetic():
    # original PhenoSeq: (0.315 - 0.270) / (0.425 - 0.270) = 0.045 / 0.155 = 0.2903
    assert gap_closure(0.270, 0.315, 0.425) == pytest.approx(0.045 / 0.155)
    assert gap_closure(0.2, 0.1, 0.4) == pytest.approx(-0.5)
    assert gap_closure(0.2, 0.4, 0.4) == pytest.approx(1.0)
    assert np.isnan(gap_closure(0.3, 0.5, 0.3))


def test_fuse_pairs_within_groups():
    rng = np.random.default_rng(0)
    morph_groups = np.array(["g1", "g0", "g1", "g2", "g0", "g1"] * 5)
    morph_X = rng.normal(size=(len(morph_groups), 3))
    expr_groups = np.repeat(["g0", "g1", "g2", "g3"], 4)
    # column 0 encodes the group, column 1 the row, so the draw can be traced back
    expr_X = np.column_stack([np.repeat([0, 1, 2, 3], 4), np.arange(16)]).astype(float)
    fused, groups = fuse(morph_X, morph_groups, expr_X, expr_groups, np.random.default_rng(1))
    assert fused.shape == (30, 5)
    np.testing.assert_array_equal(groups, morph_groups)
    np.testing.assert_array_equal(fused[:, :3], morph_X)
    np.testing.assert_array_equal(fused[:, 3], [int(g[1]) for g in morph_groups])
    np.testing.assert_array_equal(expr_groups[fused[:, 4].astype(int)], morph_groups)
    assert len(np.unique(fused[morph_groups == "g1", 4])) > 1  # random draws, not one row
    again, _ = fuse(morph_X, morph_groups, expr_X, expr_groups, np.random.default_rng(1))
    np.testing.assert_array_equal(fused, again)
    with pytest.raises(InputError, match="no expression cells"):
        fuse(morph_X, morph_groups, expr_X[:4], expr_groups[:4], np.random.default_rng(1))
