"""Wilcoxon DEGs and copairs retrieval mAP: hand-worked cases and independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, balanced_accuracy_score, r2_score

from phenoseq.errors import InputError
from phenoseq.evaluate import balanced_accuracy, pearson, r2_per_gene
from phenoseq.evaluate.deg import deg_overlap, wilcoxon_z
from phenoseq.evaluate.identification import _confusion
from phenoseq.evaluate.retrieval import (
    average_precision,
    chance_average_precision,
    chance_map,
    map_per_label,
    mean_average_precision,
)


def test_wilcoxon_z_hand_values():
    # no ties: treated [1, 2, 3], control [4, 5]: ranks 1..5, R1 = 6, U = 6 - 3*6/2 = -3,
    # var = 3*2/12 * (5 + 1) = 3  ->  z = -3 / sqrt(3)
    z = wilcoxon_z(np.array([[1.0], [2], [3]]), np.array([[4.0], [5]]))
    assert z[0] == pytest.approx(-3 / np.sqrt(3))
    # ties: treated [0, 0, 1], control [0, 2]: the three zeros share rank 2, 1 -> 4, 2 -> 5;
    # R1 = 8, U = -1, T = 3^3 - 3 = 24, var = 0.5 * (6 - 24 / 20) = 2.4  ->  z = -1 / sqrt(2.4)
    z = wilcoxon_z(np.array([[0.0], [0], [1]]), np.array([[0.0], [2]]))
    assert z[0] == pytest.approx(-1 / np.sqrt(2.4))
    # a gene constant over both samples has z = 0, not NaN
    assert wilcoxon_z(np.ones((3, 1)), np.ones((4, 1)))[0] == 0.0


def test_wilcoxon_z_matches_scipy_mannwhitneyu_with_ties():
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, size=(40, 25)).astype(float)  # many ties, like log1p counts
    c = rng.poisson(1.4, size=(30, 25)).astype(float)
    c[:, 0] = 0.0
    x[:, 0] = 0.0  # one all-tied gene
    z = wilcoxon_z(x, c)
    ref = stats.mannwhitneyu(x[:, 1:], c[:, 1:], axis=0, method="asymptotic",
                             use_continuity=False)  # fmt: skip
    np.testing.assert_allclose(2 * stats.norm.sf(np.abs(z[1:])), ref.pvalue, rtol=1e-9)
    u1 = ref.statistic - len(x) * len(c) / 2  # scipy's U1 centred = our numerator
    assert np.all(np.sign(z[1:]) == np.sign(u1))


def test_deg_overlap_ranks_by_wilcoxon():
    rng = np.random.default_rng(1)
    ctrl = rng.normal(size=(60, 10))
    shift = np.array([3.0, -2.5, 2.0, 0, 0, 0, 0, 0, 0, 0])
    real = rng.normal(size=(60, 10)) + shift
    same = deg_overlap(rng.normal(size=(60, 10)) + shift, real, ctrl, k=3)
    assert same.overlap == 1.0 and same.direction_agreement == 1.0
    assert set(same.real_top) == {0, 1, 2}
    flipped = deg_overlap(rng.normal(size=(60, 10)) - shift, real, ctrl, k=3)
    assert flipped.overlap == 1.0 and flipped.direction_agreement == 0.0
    other = np.zeros(10)
    other[[7, 8, 9]] = 3.0
    none = deg_overlap(rng.normal(size=(60, 10)) + other, real, ctrl, k=3)
    assert none.overlap == 0.0
    with pytest.raises(InputError, match="k=11"):
        deg_overlap(real, real, ctrl, k=11)


def test_average_precision_hand_values():
    # cosine similarities (worked by hand):
    #   p0 (a): p1 0.995 (+), p3 0.874, p2 0        -> AP 1
    #   p1 (a): p0 0.995 (+) first                  -> AP 1
    #   p2 (b): p3 0.486 (+), p1 0.100, p0 0        -> AP 1
    #   p3 (b): p1 0.918, p0 0.874, p2 0.486 (+)    -> AP 1/3
    p = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.9, 0.5]])
    lab = np.array(["a", "a", "b", "b"])
    np.testing.assert_allclose(average_precision(p, lab), [1, 1, 1, 1 / 3])
    per = map_per_label(p, lab)
    assert per["a"] == pytest.approx(1.0) and per["b"] == pytest.approx(2 / 3)
    assert mean_average_precision(p, lab) == pytest.approx(5 / 6)


def test_average_precision_matches_sklearn():
    rng = np.random.default_rng(2)
    lab = np.repeat(list("abcde"), 12)
    x = rng.normal(size=(60, 8)) + 0.4 * (np.arange(60) // 12)[:, None]
    sim = x @ x.T / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(x, axis=1))
    want = []
    for i in range(len(x)):
        others = np.arange(len(x)) != i
        want.append(average_precision_score(lab[others] == lab[i], sim[i, others]))
    np.testing.assert_allclose(average_precision(x, lab), want, rtol=1e-10)
    # random profiles: mAP near the share of positives (11 of 59)
    noise = rng.normal(size=(60, 8))
    assert abs(mean_average_precision(noise, lab) - 11 / 59) < 0.12


def test_chance_average_precision_is_the_mean_over_every_random_ranking():
    from itertools import combinations

    for n_pos, n_others in ((1, 1), (1, 4), (2, 5), (3, 7), (6, 6)):
        aps = []
        for pos in combinations(range(n_others), n_pos):  # every placement is equally likely
            rel = np.isin(np.arange(n_others), pos)
            aps.append(average_precision_score(rel, -np.arange(n_others)))
        assert chance_average_precision(n_pos, n_others) == pytest.approx(np.mean(aps))
    assert np.isnan(chance_average_precision(0, 5))
    # per label, as map_per_label averages: 12 of 60 -> 11 positives among 59 others
    chance = chance_map(np.repeat(list("abcde"), 12))
    assert chance["a"] == pytest.approx(chance_average_precision(11, 59))
    assert 11 / 59 < chance["a"] < 0.25  # above the share of positives (small sets)
    assert "x" not in chance_map(np.array(["x", "y", "y"]))  # a single profile has no positive


def test_retrieval_needs_two_labels():
    with pytest.raises(InputError, match="two labels"):
        average_precision(np.ones((4, 2)), np.array(["a"] * 4))


def test_other_metrics_match_scipy_and_sklearn():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, rel=1e-12)
    pred, real = rng.normal(size=(9, 20)), rng.normal(size=(9, 20))
    np.testing.assert_allclose(
        r2_per_gene(pred, real), r2_score(real, pred, multioutput="raw_values"), rtol=1e-12
    )
    true, guess = rng.integers(0, 4, 80).astype(str), rng.integers(0, 4, 80).astype(str)
    conf = _confusion(true, guess, np.unique(true))
    assert balanced_accuracy(conf) == pytest.approx(balanced_accuracy_score(true, guess))
