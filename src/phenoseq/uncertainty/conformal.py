"""Split-conformal intervals around K generated draws: the normalised nonconformity score, its
finite-sample quantile, and the interval it gives.

For draws ``"groups K genes"`` the score of a real value ``y`` is ``|y - mean| / (sd + eps)``;
``eps`` (a small floor, 5% of the median spread) keeps genes the generator never varies from
getting zero-width intervals. The conformal quantile of ``n`` exchangeable scores at level ``a``
is the ``ceil((n + 1) a)``-th smallest, which covers a new exchangeable score with probability
at least ``a`` (infinite when ``n`` is too small for ``a``).
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


def spread_floor(spread: np.ndarray) -> float:
    """``eps`` of the scores: 5% of the median draw spread (at least 1e-6)."""
    return float(max(np.median(spread) * 0.05, 1e-6))


def nonconformity(values: np.ndarray, truth: np.ndarray, eps: float) -> np.ndarray:
    """Normalised nonconformity ``|truth - mean| / (sd + eps)`` of draws ``"groups K genes"``."""
    return np.abs(truth - values.mean(axis=1)) / (values.std(axis=1, ddof=1) + eps)


def interval(values: np.ndarray, level: float, q: float | np.ndarray | None, eps: float):
    """``(lower, upper)`` of draws ``"groups K genes"``: ``mean +- q (sd + eps)`` (conformal;
    ``q`` one multiplier or one per gene) or, without a multiplier, the draws' own central
    quantiles."""
    if q is None:
        return np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=1)
    mean, half = values.mean(axis=1), q * (values.std(axis=1, ddof=1) + eps)
    return mean - half, mean + half
