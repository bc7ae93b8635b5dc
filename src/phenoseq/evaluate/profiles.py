"""Mean-level metrics: pseudo-bulk profiles, Pearson of means and of deltas, per-gene R², top-k
differentially expressed gene (DEG) overlap (DESIGN.md §4).

All take per-group mean profiles (``"n_groups n_genes"`` or one ``"n_genes"`` vector), usually
of log1p-normalised expression, and return plain floats or arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.arrays import as_matrix, as_vector, same_shape
from ..errors import InputError


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length vectors; NaN if either is constant."""
    a, b = as_vector(a, "a"), as_vector(b, "b")
    same_shape(a, b, "a and b")
    if len(a) < 2:
        raise InputError(f"pearson needs at least 2 values, got {len(a)}.", "pass more genes")
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denom) if denom > 0 else float("nan")


def pearson_delta(pred_mean: np.ndarray, real_mean: np.ndarray, control_mean: np.ndarray) -> float:
    """Pearson of the predicted and real changes from control: ``r(pred - ctrl, real - ctrl)``.

    Parameters
    ----------
    pred_mean, real_mean, control_mean
        ``"n_genes"`` mean profiles of the predicted treatment, the real treatment and the real
        control (e.g. DMSO) cells.
    """
    control = as_vector(control_mean, "control_mean")
    pred, real = as_vector(pred_mean, "pred_mean"), as_vector(real_mean, "real_mean")
    same_shape(pred, control, "pred_mean and control_mean")
    same_shape(real, control, "real_mean and control_mean")
    return pearson(pred - control, real - control)


def r2_per_gene(pred_means: np.ndarray, real_means: np.ndarray) -> np.ndarray:
    """Per-gene coefficient of determination of the treatment means, across groups.

    For gene ``j``: ``R²_j = 1 - SS_res / SS_tot`` with
    ``SS_res = sum_g (real_gj - pred_gj)²`` and ``SS_tot = sum_g (real_gj - mean_g real_gj)²``
    over the ``n_groups`` held-out groups (as sklearn's ``r2_score`` per output, and as
    Haghighi et al. 2022 report it: the median over genes). It is unbounded below; 0 is the
    score of predicting every group's mean by the real across-group mean.

    Parameters
    ----------
    pred_means, real_means
        ``"n_groups n_genes"`` predicted and real mean profiles, rows in the same group order.

    Returns
    -------
    ``"n_genes"`` R²; NaN for genes whose real means do not vary across groups (``SS_tot = 0``).
    """
    pred, real = as_matrix(pred_means, "pred_means"), as_matrix(real_means, "real_means")
    same_shape(pred, real, "pred_means and real_means")
    ss_res = ((real - pred) ** 2).sum(axis=0)
    ss_tot = ((real - real.mean(axis=0)) ** 2).sum(axis=0)
    out = np.full(real.shape[1], np.nan)
    np.divide(ss_res, ss_tot, out=out, where=ss_tot > 0)
    return 1.0 - out


@dataclass(frozen=True, eq=False)
class DegOverlapOutput:
    """Agreement of the top-k genes by absolute change.

    Attributes
    ----------
    overlap
        ``|top_k(pred) ∩ top_k(real)| / k``, in [0, 1].
    direction_agreement
        Fraction of the real top-k genes whose predicted change has the same sign as the real
        one (over all k real top genes, whether or not the prediction ranks them top-k).
    real_top, pred_top
        ``"k"`` gene indices of the top-k real and predicted genes, largest |delta| first.
    """

    overlap: float
    direction_agreement: float
    real_top: np.ndarray
    pred_top: np.ndarray


def _top_k(delta: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``|delta|``; ties go to the lower gene index."""
    return np.argsort(-np.abs(delta), kind="stable")[:k]


def top_k_deg_overlap(
    pred_delta: np.ndarray, real_delta: np.ndarray, k: int = 50
) -> DegOverlapOutput:
    """Overlap and sign agreement of the top-``k`` genes ranked by absolute change.

    A simple DEG proxy: genes are ranked by ``|delta|`` (e.g. treatment minus control mean
    log1p expression), not by a test statistic.

    Parameters
    ----------
    pred_delta, real_delta
        ``"n_genes"`` predicted and real changes from control.
    k
        Number of top genes, ``1 <= k <= n_genes``.
    """
    pred, real = as_vector(pred_delta, "pred_delta"), as_vector(real_delta, "real_delta")
    same_shape(pred, real, "pred_delta and real_delta")
    if not 1 <= k <= len(real):
        raise InputError(f"k={k} with {len(real)} genes.", f"pass 1 <= k <= {len(real)}")
    real_top, pred_top = _top_k(real, k), _top_k(pred, k)
    overlap = len(np.intersect1d(real_top, pred_top)) / k
    agree = float(np.mean(np.sign(pred[real_top]) == np.sign(real[real_top])))
    return DegOverlapOutput(overlap, agree, real_top, pred_top)
