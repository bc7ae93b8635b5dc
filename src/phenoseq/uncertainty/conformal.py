"""Split-conformal intervals around K generated draws: the normalised nonconformity score, its
finite-sample quantile — per gene, and over calibration replicates — and the interval it gives.

For draws ``"groups K genes"`` the score of a real value ``y`` is ``|y - mean| / scale`` with a
per-group, per-gene ``scale`` (:mod:`.spread`: the draws' SD plus a floor ``eps``, and the mean
head's novelty-aware variance). The conformal quantile of ``n`` exchangeable scores at level
``a`` is the ``ceil((n + 1) a)``-th smallest, which covers a new exchangeable score with
probability at least ``a`` (infinite when ``n`` is too small for ``a``).

Groups are exchangeable only within a replicate (plate): a new replicate has its own offset.
With several calibration replicates the multiplier is taken with the replicate as the unit:
per replicate the conformal quantile of its groups' scores, then over the replicates the
conformal quantile of those — or, with fewer replicates than that needs
(``R < 1 / (1 - a) - 1``), their maximum.
"""

from __future__ import annotations

import math

import numpy as np


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) level) / n`` empirical quantile of ``scores`` (inf if n is too small)."""
    s = np.sort(np.asarray(scores, float).ravel())
    k = math.ceil((len(s) + 1) * level)
    return float(s[k - 1]) if k <= len(s) else math.inf


def per_gene_quantiles(scores: np.ndarray, level: float) -> list[float] | None:
    """Conformal quantile of every gene's scores over groups (``"groups genes"``), or None when
    the groups are too few for ``level`` (the quantile would be infinite)."""
    q = [conformal_quantile(scores[:, j], level) for j in range(scores.shape[1])]
    return None if not np.isfinite(q).all() else [float(v) for v in q]


def replicate_quantiles(
    scores: np.ndarray, replicates: np.ndarray, level: float
) -> tuple[list[float] | None, float]:
    """``(per gene, pooled)`` multipliers at ``level`` with the replicate as the unit (see the
    module docstring); a single replicate gives the plain conformal quantiles. The per-gene
    list is None when a replicate has too few groups for ``level``."""
    reps = np.unique(replicates)
    per_rep = [per_gene_quantiles(scores[replicates == r], level) for r in reps]
    pooled = [conformal_quantile(scores[replicates == r], level) for r in reps]
    if len(reps) == 1:
        return per_rep[0], pooled[0]
    gene = None if any(p is None for p in per_rep) else _over_replicates(np.array(per_rep), level)
    return gene, float(_over_replicates(np.array(pooled)[:, None], level)[0])


def _over_replicates(q: np.ndarray, level: float) -> list[float]:
    """``"R genes"`` per-replicate multipliers -> one per gene: the conformal quantile over the
    replicates, or their maximum when ``R`` is too small for it."""
    if math.ceil((len(q) + 1) * level) > len(q):
        return q.max(axis=0).tolist()
    return [conformal_quantile(q[:, j], level) for j in range(q.shape[1])]


def guarantee(n_replicates: int, level: float) -> str:
    """What the intervals at ``level`` promise, in words (recorded in calibration.json)."""
    if n_replicates <= 1:
        return ("a new group of the calibration replicate's plates: conformal (the replicate's "
                "groups exchangeable); a new replicate may differ")  # fmt: skip
    if math.ceil((n_replicates + 1) * level) > n_replicates:
        return (f"a new replicate: the largest of {n_replicates} calibration replicates' "
                f"multipliers (a conformal guarantee over replicates needs "
                f"{math.ceil(1 / (1 - level)) - 1}+)")  # fmt: skip
    return f"a new replicate: conformal over {n_replicates} calibration replicates"


def spread_floor(spread: np.ndarray) -> float:
    """``eps`` of the scores: 5% of the median draw spread (at least 1e-6)."""
    return float(max(np.median(spread) * 0.05, 1e-6))


def nonconformity(values: np.ndarray, truth: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """Normalised nonconformity ``|truth - mean| / scale`` of draws ``"groups K genes"``
    (``scale`` ``"groups genes"``, or a floor ``eps`` added to the draws' SD when a number)."""
    if np.ndim(scale) == 0:
        scale = values.std(axis=1, ddof=1) + scale
    return np.abs(truth - values.mean(axis=1)) / scale


def interval(values: np.ndarray, level: float, q: float | np.ndarray | None,
             scale: np.ndarray | float):  # fmt: skip
    """``(lower, upper)`` of draws ``"groups K genes"``: ``mean +- q scale`` (conformal; ``q``
    one multiplier or one per gene; ``scale`` as in :func:`nonconformity`) or, without a
    multiplier, the draws' own central quantiles."""
    if q is None:
        return np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=1)
    if np.ndim(scale) == 0:
        scale = values.std(axis=1, ddof=1) + scale
    mean = values.mean(axis=1)
    return mean - q * scale, mean + q * scale
