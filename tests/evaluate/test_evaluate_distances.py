from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from phenoseq.errors import InputError
from phenoseq.evaluate import distances, energy_distance, median_bandwidth, mmd_rbf, subsample_to


def col(*values: float) -> np.ndarray:
    return np.array(values, dtype=float).reshape(-1, 1)


def test_energy_distance_hand_values():
    # x = [0, 1], y = [3, 5]
    # cross |x_i - y_j|: 3, 5, 2, 4 -> mean 3.5
    # within x (i != j): 1;  within y (i != j): 2
    # ED = 2 * 3.5 - 1 - 2 = 4
    assert energy_distance(col(0, 1), col(3, 5)) == pytest.approx(4.0)
    # x = y = [0, 2]: cross 0, 2, 2, 0 -> mean 1; within 2 and 2 -> ED = 2 - 2 - 2 = -2 (< 0,
    # the U-statistic is unbiased, not non-negative)
    assert energy_distance(col(0, 2), col(0, 2)) == pytest.approx(-2.0)
    # 2-D: x = [(0,0), (3,4)], y = [(0,0), (0,0)]
    # cross: 0, 0, 5, 5 -> mean 2.5; within x: 5; within y: 0 -> ED = 5 - 5 - 0 = 0
    x, y = np.array([[0.0, 0.0], [3.0, 4.0]]), np.zeros((2, 2))
    assert energy_distance(x, y) == pytest.approx(0.0)


def brute_energy(x: np.ndarray, y: np.ndarray) -> float:
    def d(a, b):
        return float(np.sqrt(((a - b) ** 2).sum()))

    cross = np.mean([d(a, b) for a in x for b in y])
    wx = np.mean([d(a, b) for a, b in itertools.permutations(x, 2)])
    wy = np.mean([d(a, b) for a, b in itertools.permutations(y, 2)])
    return 2 * cross - wx - wy


def test_energy_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(loc=0.5, size=(5, 3))
    assert energy_distance(x, y) == pytest.approx(brute_energy(x, y), rel=1e-12)


def test_energy_distance_relates_to_scipy_v_statistic():
    # scipy.stats.energy_distance (1-D) = sqrt(2 A - Vx - Vy), V-statistics with the zero
    # diagonal included: Vx = (n - 1) / n * Ux.  Hence U = scipy**2 - Ux / n - Uy / m.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=11), rng.exponential(size=6)
    ux = np.mean([abs(a - b) for a, b in itertools.permutations(x, 2)])
    uy = np.mean([abs(a - b) for a, b in itertools.permutations(y, 2)])
    want = stats.energy_distance(x, y) ** 2 - ux / len(x) - uy / len(y)
    assert energy_distance(x[:, None], y[:, None]) == pytest.approx(want, rel=1e-10)


def test_energy_distance_grows_with_shift():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 5)), rng.normal(size=(300, 5))
    eds = [energy_distance(x, y + s) for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert abs(eds[0]) < 0.05
    assert all(a < b for a, b in itertools.pairwise(eds))


def test_chunked_sums_equal_unchunked(monkeypatch):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(33, 4))
    full_ed, full_mmd = energy_distance(x, y), mmd_rbf(x, y, bandwidth=1.3)
    monkeypatch.setattr(distances, "CHUNK_ELEMENTS", 50)  # 1-row chunks
    assert energy_distance(x, y) == pytest.approx(full_ed, rel=1e-12)
    assert mmd_rbf(x, y, bandwidth=1.3) == pytest.approx(full_mmd, rel=1e-12)


def test_mmd_hand_value():
    # x = [0, 1], y = [2, 3], sigma = 1: k(d) = exp(-d^2 / 2)
    # within x (i != j): k(1) = e^-0.5;  within y: k(1) = e^-0.5
    # cross distances 2, 3, 1, 2 -> mean k = (2 e^-2 + e^-4.5 + e^-0.5) / 4
    # MMD^2 = 2 e^-0.5 - 2 * mean = 1.5 e^-0.5 - e^-2 - 0.5 e^-4.5 = 0.768907...
    want = 1.5 * np.exp(-0.5) - np.exp(-2) - 0.5 * np.exp(-4.5)
    assert mmd_rbf(col(0, 1), col(2, 3), bandwidth=1.0) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(0.768907, abs=1e-6)


def test_median_bandwidth_hand_value():
    # pooled [0, 1, 2, 3]: pairwise 1, 2, 3, 1, 2, 1 -> sorted 1 1 1 2 2 3 -> median 1.5
    assert median_bandwidth(col(0, 1), col(2, 3)) == pytest.approx(1.5)
    assert mmd_rbf(col(0, 1), col(2, 3)) == pytest.approx(
        mmd_rbf(col(0, 1), col(2, 3), bandwidth=1.5)
    )


def brute_mmd(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    def k(a, b):
        return float(np.exp(-((a - b) ** 2).sum() / (2 * sigma**2)))

    kx = np.mean([k(a, b) for a, b in itertools.permutations(x, 2)])
    ky = np.mean([k(a, b) for a, b in itertools.permutations(y, 2)])
    return kx + ky - 2 * np.mean([k(a, b) for a in x for b in y])


def test_mmd_matches_brute_force_and_detects_shift():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(9, 3)), rng.normal(loc=0.3, size=(6, 3))
    assert mmd_rbf(x, y, bandwidth=0.8) == pytest.approx(brute_mmd(x, y, 0.8), rel=1e-12)
    a, b = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    same, shifted = mmd_rbf(a, b), mmd_rbf(a, b + 1.0)
    assert abs(same) < 0.01 < shifted


def test_median_bandwidth_subsamples_deterministically():
    x = np.random.default_rng(5).normal(size=(50, 2))
    a = median_bandwidth(x, max_points=20, seed=1)
    assert a == median_bandwidth(x, max_points=20, seed=1)
    assert a == pytest.approx(median_bandwidth(x), rel=0.3)


def test_subsample_to():
    x = np.arange(20).reshape(10, 2)
    out = subsample_to(x, 4, np.random.default_rng(0))
    assert out.shape == (4, 2)
    assert len(np.unique(out[:, 0])) == 4 and np.all(np.diff(out[:, 0]) > 0)
    assert set(out[:, 0]) <= set(x[:, 0])
    np.testing.assert_array_equal(out, subsample_to(x, 4, np.random.default_rng(0)))
    assert subsample_to(x, 10, np.random.default_rng(0)) is x
    with pytest.raises(InputError):
        subsample_to(x, 0, np.random.default_rng(0))


@pytest.mark.parametrize("fn", [energy_distance, mmd_rbf])
def test_distances_reject_bad_input(fn):
    good = np.zeros((3, 2))
    with pytest.raises(InputError, match="columns"):
        fn(good, np.zeros((3, 3)))
    with pytest.raises(InputError, match="NaN"):
        fn(good, np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(InputError, match="at least 2"):
        fn(good, np.zeros((1, 2)))
    with pytest.raises(InputError, match="2-D"):
        fn(np.zeros(3), np.zeros(3))


def test_e_distance_is_the_scperturb_pertpy_formula():
    """scPerturb / pertpy E-distance: 2 delta - sigma_x - sigma_y with squared Euclidean
    distances, means over all pairs (diagonal included) — as pertpy's Edistance computes it
    with ``pairwise_distances(..., metric="sqeuclidean").mean()``."""
    from scipy.spatial.distance import cdist

    from phenoseq.evaluate import e_distance

    # hand values: x = [0, 1], y = [3, 5]; squared cross 9, 25, 4, 16 -> 13.5;
    # within x (4 pairs incl. diagonal) 0, 1, 1, 0 -> 0.5; within y 0, 4, 4, 0 -> 2
    assert e_distance(col(0, 1), col(3, 5)) == pytest.approx(2 * 13.5 - 0.5 - 2.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.normal(0.5, 2.0, size=(25, 5))
    published = (2 * cdist(x, y, "sqeuclidean").mean() - cdist(x, x, "sqeuclidean").mean()
                 - cdist(y, y, "sqeuclidean").mean())  # fmt: skip
    assert e_distance(x, y) == pytest.approx(published, rel=1e-12)
    # with squared distances it is twice the squared distance of the means, never negative
    assert e_distance(x, y) == pytest.approx(2 * np.sum((x.mean(0) - y.mean(0)) ** 2), rel=1e-10)
    assert e_distance(x, x) == pytest.approx(0.0, abs=1e-12)
