"""Distances between two samples of cells: energy distance and RBF-kernel MMD (DESIGN.md §4).

Both are *unbiased* U-statistics: within-sample averages run over distinct pairs ``i != j``
only, so for two samples of the same distribution the expected value is exactly 0 and a
single estimate can be slightly negative. Pairwise distances are computed in row chunks with
:func:`scipy.spatial.distance.cdist`, so a few thousand cells (in the 30-PC space) never hold
more than about ``2**22`` distances in memory at once.

Compare methods on equal footing: subsample generated cells to the size of the real set
(:func:`subsample_to`), and for MMD fix the bandwidth per treatment (e.g. from the real cells
with :func:`median_bandwidth`) when several methods are scored against the same real cells.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial.distance import cdist, pdist

from ..data.arrays import as_matrix, same_width
from ..errors import InputError

CHUNK_ELEMENTS = 2**22  # distances held at once (32 MiB of float64)
MAX_BANDWIDTH_POINTS = 3000  # pooled cells used by the median heuristic (~4.5M pairs)


def _pair_sum(
    x: np.ndarray, y: np.ndarray, metric: str, fn: Callable[[np.ndarray], np.ndarray] | None
) -> float:
    """``sum_ij fn(d(x_i, y_j))`` over all pairs, ``cdist`` on row chunks of ``x``."""
    step = max(1, CHUNK_ELEMENTS // max(1, len(y)))
    total = 0.0
    for start in range(0, len(x), step):
        d = cdist(x[start : start + step], y, metric=metric)
        total += float((d if fn is None else fn(d)).sum())
    return total


def _mean_cross(x: np.ndarray, y: np.ndarray, metric: str, fn=None) -> float:
    return _pair_sum(x, y, metric, fn) / (len(x) * len(y))


def _mean_within(x: np.ndarray, metric: str, fn=None, diagonal: float = 0.0) -> float:
    """Mean over distinct pairs ``i != j``; ``diagonal`` is ``fn`` of a zero distance."""
    n = len(x)
    return (_pair_sum(x, x, metric, fn) - n * diagonal) / (n * (n - 1))


def _two_samples(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_matrix(x, "x", min_rows=2), as_matrix(y, "y", min_rows=2)
    same_width(x, y, "x and y")
    return x, y


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased energy distance between two samples (Székely & Rizzo), Euclidean norm.

    ``2 * mean_ij ||x_i - y_j|| - mean_{i!=j} ||x_i - x_j|| - mean_{i!=j} ||y_i - y_j||``

    The within-sample means exclude the (zero) diagonal, so this is the U-statistic: its
    expectation is the population energy distance (0 iff the distributions are equal), and an
    estimate can be slightly negative. It is *not* squared-rooted. (scipy's 1-D
    ``scipy.stats.energy_distance`` is the square root of the V-statistic, whose within-sample
    means include the diagonal.)

    Parameters
    ----------
    x
        ``"n d"`` first sample, ``n >= 2``.
    y
        ``"m d"`` second sample, ``m >= 2``.

    Returns
    -------
    The energy distance, in the units of the features.
    """
    x, y = _two_samples(x, y)
    cross = _mean_cross(x, y, "euclidean")
    return 2.0 * cross - _mean_within(x, "euclidean") - _mean_within(y, "euclidean")


def e_distance(x: np.ndarray, y: np.ndarray) -> float:
    """The E-distance of scPerturb (Peidli et al. 2024) and pertpy's ``Distance("edistance")``.

    ``2 mean_ij ||x_i - y_j||^2 - mean_ij ||x_i - x_j||^2 - mean_ij ||y_i - y_j||^2`` with
    *squared* Euclidean distances and within-sample means over all pairs, the zero diagonal
    included (the V-statistic), as those packages compute it; so their published numbers and
    ours are on one scale. With squared distances it equals ``2 ||mean(x) - mean(y)||^2``
    exactly: it compares the means only, never negative. :func:`energy_distance` (Euclidean,
    unbiased) also compares the shapes of the distributions.

    Parameters
    ----------
    x
        ``"n d"`` first sample.
    y
        ``"m d"`` second sample.

    Returns
    -------
    The E-distance, in squared units of the features.
    """
    x, y = _two_samples(x, y)

    def within(a: np.ndarray) -> float:
        return _pair_sum(a, a, "sqeuclidean", None) / len(a) ** 2

    return 2.0 * _mean_cross(x, y, "sqeuclidean") - within(x) - within(y)


def median_bandwidth(
    x: np.ndarray,
    y: np.ndarray | None = None,
    max_points: int = MAX_BANDWIDTH_POINTS,
    seed: int = 0,
) -> float:
    """Median heuristic: the median Euclidean distance over distinct pairs of the pooled sample.

    The pooled sample is ``x`` stacked on ``y`` (or ``x`` alone); the median runs over its
    ``N (N - 1) / 2`` pairs ``i < j`` (zero self-distances excluded). If ``N > max_points``,
    ``max_points`` pooled rows are drawn without replacement with ``seed`` first.

    Returns
    -------
    ``sigma`` for :func:`mmd_rbf`. Raises if it is 0 (all pooled cells identical).
    """
    z = as_matrix(x, "x", min_rows=1)
    if y is not None:
        y = as_matrix(y, "y", min_rows=1)
        same_width(z, y, "x and y")
        z = np.vstack([z, y])
    if len(z) < 2:
        raise InputError("the median heuristic needs at least 2 cells.", "pass more cells")
    if len(z) > max_points:
        z = subsample_to(z, max_points, np.random.default_rng(seed))
    sigma = float(np.median(pdist(z, "euclidean")))
    if sigma <= 0:
        raise InputError(
            "the median pairwise distance is 0 (most cells are identical).",
            "pass an explicit bandwidth",
        )
    return sigma


def mmd_rbf(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None, seed: int = 0) -> float:
    """Unbiased squared MMD with the RBF kernel ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``.

    ``mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_ij k(x_i, y_j)``
    (Gretton et al. 2012, eq. 3): expectation 0 for equal distributions, can be slightly
    negative.

    Parameters
    ----------
    x
        ``"n d"`` first sample, ``n >= 2``.
    y
        ``"m d"`` second sample, ``m >= 2``.
    bandwidth
        ``sigma``; ``None`` uses :func:`median_bandwidth` of the pooled ``x`` and ``y``
        (``seed`` only matters when that subsamples).

    Returns
    -------
    MMD², unitless (kernel values lie in (0, 1]).
    """
    x, y = _two_samples(x, y)
    sigma = median_bandwidth(x, y, seed=seed) if bandwidth is None else float(bandwidth)
    if not np.isfinite(sigma) or sigma <= 0:
        raise InputError(f"bandwidth is {bandwidth}; it must be positive.", "pass sigma > 0")
    gamma = 1.0 / (2.0 * sigma**2)

    def kernel(d2: np.ndarray) -> np.ndarray:
        return np.exp(-gamma * d2)

    within = _mean_within(x, "sqeuclidean", kernel, 1.0) + _mean_within(
        y, "sqeuclidean", kernel, 1.0
    )
    return within - 2.0 * _mean_cross(x, y, "sqeuclidean", kernel)


def subsample_to(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``n`` rows of ``x``, drawn without replacement (all rows, in order, if fewer).

    Used to bring generated cells to the size of the real set before a distance, so that
    every method's estimate has the same sample size (and the same variance).

    Parameters
    ----------
    x
        ``"n_cells ..."`` array.
    n
        Target number of rows, ``>= 1``.
    rng
        Source of randomness; the kept rows stay in their original order.
    """
    if n < 1:
        raise InputError(f"cannot subsample to {n} rows.", "pass n >= 1")
    x = np.asarray(x)
    if len(x) <= n:
        return x
    return x[np.sort(rng.choice(len(x), size=n, replace=False))]
