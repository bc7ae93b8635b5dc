"""The novelty-aware scale of a group's prediction error, per gene.

Two sources: the spread of the generator's draws (``sd``: sampling noise of a pseudo-bulk of
generated cells, plus the floor ``eps``), and the mean head's own uncertainty about the group's
mean — the spread of its mixture's component means (it hesitates between treatments) plus kernel
ridge's predictive variance on its share (it must interpolate a new compound). The second is ~0
for a recognised treatment and grows with novelty, so one calibrated multiplier of
``sqrt((sd + eps)^2 + head variance)`` covers seen and new groups alike, and its mean over genes
ranks the groups by how wrong they are likely to be.
"""

from __future__ import annotations

import numpy as np

from ..model import Conditions, PhenoSeqModel
from ..model._wells import well_mean


def head_variance(model: PhenoSeqModel, cond: Conditions, groups: list[str],
                  seed: int = 0) -> np.ndarray:  # fmt: skip
    """``"n_groups n_genes"``: the variance of the mean head's mixture in the analysis (log1p)
    space for every group (zeros for a model without a mean head)."""
    head = model.mean_head
    out = np.zeros((len(groups), len(model.registry.genes)))
    if head is None:
        return out
    rng = np.random.default_rng(seed)
    means = np.vstack([well_mean(cond.cells(g), rng, model.config.max_condition_cells)
                       for g in groups])  # fmt: skip
    targets = model.group_stats["pseudobulk"].astype(np.float64)
    return head.predict_spread(head.represent(means), targets)[1]


def error_scale(sd: np.ndarray, eps: float, variance: np.ndarray) -> np.ndarray:
    """``sqrt((sd + eps)^2 + variance)``: the per-gene scale of the nonconformity scores."""
    return np.sqrt((sd + eps) ** 2 + variance)
