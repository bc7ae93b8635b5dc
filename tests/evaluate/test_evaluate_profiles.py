from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import r2_score

from phenoseq.errors import InputError
from phenoseq.evaluate import (
    pearson,
    pearson_delta,
    pseudobulk,
    r2_per_gene,
    top_k_deg_overlap,
)


def test_pseudobulk_hand_values_dense_and_sparse():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]])
    groups = np.array(["b", "b", "a"])
    for data in (x, sp.csr_matrix(x)):
        names, means = pseudobulk(data, groups)
        assert names.tolist() == ["a", "b"]
        np.testing.assert_allclose(means, [[10.0, 0.0], [2.0, 3.0]])
    with pytest.raises(InputError, match="one label per row"):
        pseudobulk(x, groups[:2])


def test_pearson_hand_value():
    # a - mean = [-1, 0, 1]; b - mean = [-7/3, -1/3, 8/3]
    # r = 5 / sqrt(2 * 114/9) = 0.993399...
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / np.sqrt(2 * 114 / 9))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(InputError):
        pearson([1, 2], [1, 2, 3])


def test_pearson_delta_differs_from_raw_pearson():
    ctrl = np.array([0.0, 5.0, 0.0])
    pred = np.array([1.0, 6.0, 2.0])
    real = np.array([2.0, 5.0, 1.0])
    # deltas [1, 1, 2] and [2, 0, 1]: centred [-1/3, -1/3, 2/3] . [1, -1, 0] = 0 -> r = 0,
    # although the raw profiles agree (driven by the control's large gene 2)
    assert pearson_delta(pred, real, ctrl) == pytest.approx(0.0, abs=1e-12)
    assert pearson(pred, real) > 0.8
    assert pearson_delta(ctrl + 2 * (real - ctrl), real, ctrl) == pytest.approx(1.0)
    with pytest.raises(InputError, match="shapes"):
        pearson_delta(pred, real, ctrl[:2])


def test_r2_per_gene_hand_values():
    real = np.array([[1.0, 0.0, 5.0, 1.0], [3.0, 0.0, 5.0, 2.0], [5.0, 6.0, 5.0, 3.0]])
    pred = np.array([[2.0, 2.0, 4.0, 3.0], [3.0, 2.0, 5.0, 2.0], [4.0, 2.0, 6.0, 1.0]])
    # gene 0: SS_tot = 4 + 0 + 4 = 8, SS_res = 1 + 0 + 1 = 2 -> 1 - 2/8 = 0.75
    # gene 1: mean 2, SS_tot = 4 + 4 + 16 = 24; pred = the mean -> SS_res = 24 -> 0
    # gene 2: real constant -> SS_tot = 0 -> NaN
    # gene 3: SS_tot = 2, SS_res = 4 + 0 + 4 = 8 -> 1 - 4 = -3
    r2 = r2_per_gene(pred, real)
    np.testing.assert_allclose(r2, [0.75, 0.0, np.nan, -3.0])
    keep = [0, 1, 3]
    want = r2_score(real[:, keep], pred[:, keep], multioutput="raw_values")
    np.testing.assert_allclose(r2[keep], want)
    with pytest.raises(InputError, match="shapes"):
        r2_per_gene(pred[:2], real)


def test_top_k_deg_overlap_hand_values():
    real = np.array([5.0, -4.0, 3.0, 0.1, 0.0])
    pred = np.array([4.0, 1.0, -3.0, 0.0, 6.0])
    # |real| top 3: genes 0, 1, 2; |pred| top 3: genes 4, 0, 2 -> overlap {0, 2} = 2/3
    # signs on real top genes: pred (+, +, -) vs real (+, -, +) -> only gene 0 agrees: 1/3
    out = top_k_deg_overlap(pred, real, k=3)
    assert out.overlap == pytest.approx(2 / 3)
    assert out.direction_agreement == pytest.approx(1 / 3)
    assert out.real_top.tolist() == [0, 1, 2] and out.pred_top.tolist() == [4, 0, 2]
    perfect = top_k_deg_overlap(real, real, k=5)
    assert perfect.overlap == 1.0 and perfect.direction_agreement == 1.0
    with pytest.raises(InputError, match="k=6"):
        top_k_deg_overlap(pred, real, k=6)
