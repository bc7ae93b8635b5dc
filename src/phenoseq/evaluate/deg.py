"""Differential expression against control: the Wilcoxon rank-sum statistic per gene, and the
top-k DEG overlap of a prediction with the real data (DESIGN.md §4).

The statistic is scanpy's ``rank_genes_groups(method="wilcoxon")`` score: the normal
approximation of the rank-sum (Mann-Whitney) statistic with the tie correction and no
continuity correction, positive when the genes are higher in the treated cells. Genes are
ranked by its absolute value, so sample size changes the scale, not the order.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..data.arrays import as_matrix, same_width
from ..errors import InputError
from .profiles import DegOverlapOutput, top_k_deg_overlap


def _tie_term(stacked: np.ndarray) -> np.ndarray:
    """``sum_t (t^3 - t)`` over the tie groups of every column of ``"n n_genes"``."""
    n, g = stacked.shape
    s = np.sort(stacked, axis=0)
    new_run = np.ones_like(s, dtype=bool)
    new_run[1:] = s[1:] != s[:-1]
    run = np.cumsum(new_run, axis=0) - 1 + np.arange(g)[None, :] * n  # unique id per column run
    t = np.bincount(run.ravel(), minlength=g * n).astype(np.float64)
    return (t**3 - t).reshape(g, n).sum(axis=1)


def wilcoxon_z(treated: np.ndarray, control: np.ndarray) -> np.ndarray:
    """Rank-sum z-score of every gene, ``treated`` vs ``control`` (ties averaged).

    ``z = (R1 - n1 (n1 + n2 + 1) / 2) / sqrt(n1 n2 / 12 * ((n + 1) - T / (n (n - 1))))``
    with ``R1`` the rank sum of the treated cells and ``T = sum (t^3 - t)`` over tie groups;
    0 for genes that are constant over both samples. ``2 * norm.sf(|z|)`` is the asymptotic
    two-sided p-value of ``scipy.stats.mannwhitneyu(..., use_continuity=False)``.

    Parameters
    ----------
    treated, control
        ``"n_cells n_genes"`` expression (e.g. log1p), at least 2 cells each.

    Returns
    -------
    ``"n_genes"`` z-scores.
    """
    x, c = as_matrix(treated, "treated", 2), as_matrix(control, "control", 2)
    same_width(x, c, "treated and control")
    n1, n2 = len(x), len(c)
    n = n1 + n2
    stacked = np.vstack([x, c])
    ranks = rankdata(stacked, axis=0)
    u = ranks[:n1].sum(axis=0) - n1 * (n + 1) / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - _tie_term(stacked) / (n * (n - 1)))
    z = np.zeros(x.shape[1])
    np.divide(u, np.sqrt(np.maximum(var, 0.0)), out=z, where=var > 1e-12)
    return z


def deg_overlap(
    predicted: np.ndarray, real: np.ndarray, control: np.ndarray, k: int = 50
) -> DegOverlapOutput:
    """Top-``k`` DEG overlap and direction agreement of predicted vs real cells of a treatment.

    Both are tested against the same real ``control`` cells with :func:`wilcoxon_z`; the top
    ``k`` genes by ``|z|`` are compared (overlap = shared / k) and the direction agreement is
    the share of the real top-``k`` genes whose predicted z has the same sign.
    """
    pz, rz = wilcoxon_z(predicted, control), wilcoxon_z(real, control)
    if not 1 <= k <= len(rz):
        raise InputError(f"k={k} DEGs with {len(rz)} genes.", f"pass 1 <= k <= {len(rz)}")
    return top_k_deg_overlap(pz, rz, k)
