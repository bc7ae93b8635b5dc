"""Scores of generated cells against real held-out cells, with baselines and ceilings.

The demo prints these; the evaluation command extends them. Everything is computed in the fixed
evaluation space: log1p(normalize_total 1e4) projected on 30 PCs fitted on the *training*
expression (continuous profiles are used as they are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .distances import energy_distance, subsample_to
from .identification import fuse, gap_closure, treatment_identification
from .space import ExpressionSpace


@dataclass
class Cells:
    """One population: ``x`` ``"n_cells n_dims"`` with its pairing ``groups`` and ``labels``."""

    x: np.ndarray
    groups: np.ndarray
    labels: np.ndarray

    def take(self, mask: np.ndarray) -> Cells:
        return Cells(self.x[mask], self.groups[mask], self.labels[mask])


def fit_space(train_log1p: np.ndarray, n_pcs: int = 30, seed: int = 0) -> ExpressionSpace:
    """The evaluation PCA, fitted on training expression (``n_pcs`` capped by the data size)."""
    return ExpressionSpace.fit(train_log1p, min(n_pcs, *train_log1p.shape), seed)


def energy_by_group(real: Cells, other: Cells, rng: np.random.Generator) -> pd.Series:
    """Energy distance per real group; ``other`` subsampled to the size of the real set."""
    out = {}
    for g in np.unique(real.groups):
        r = real.x[real.groups == g]
        o = other.x[other.groups == g]
        if len(r) >= 2 and len(o) >= 2:
            out[g] = energy_distance(subsample_to(o, len(r), rng), r)
    return pd.Series(out, dtype=float)


def split_half_by_group(real: Cells, rng: np.random.Generator) -> pd.Series:
    """The noise floor: energy distance between two random halves of each real group."""
    out = {}
    for g in np.unique(real.groups):
        r = real.x[real.groups == g]
        if len(r) >= 4:
            perm = rng.permutation(len(r))
            out[g] = energy_distance(r[perm[: len(r) // 2]], r[perm[len(r) // 2 :]])
    return pd.Series(out, dtype=float)


def train_mean_cells(train: Cells, test: Cells, n_per_group: int, rng) -> Cells:
    """Train-mean baseline: every held-out group gets random pooled training cells."""
    groups = np.unique(test.groups)
    rows = rng.integers(0, len(train.x), size=(len(groups), n_per_group)).ravel()
    g = np.repeat(groups, n_per_group)
    lab = pd.Series(test.labels, index=test.groups).groupby(level=0).first()
    return Cells(train.x[rows], g, lab.loc[g].to_numpy())


def identification_suite(
    morph_train: Cells,
    morph_test: Cells,
    expr_train: Cells,
    expr_test: Cells,
    generated: Cells,
    seed: int = 0,
) -> dict[str, float]:
    """Balanced accuracy of treatment identification on held-out cells (seen treatments only).

    Classifiers are trained on training replicates (imaging: morphology cells; expression:
    real cells; fused: a morphology cell concatenated with a real expression cell of the same
    group) and tested on the held-out replicate with imaging / generated / imaging + generated /
    imaging + real (the ceiling) inputs.
    """  # noqa: D205
    rng = np.random.default_rng(seed)
    seen = np.isin(morph_test.labels, np.unique(morph_train.labels))
    mt = morph_test.take(seen)
    ft_x, ft_g = fuse(morph_train.x, morph_train.groups, expr_train.x, expr_train.groups, rng)
    ft_y = _labels_of(ft_g, morph_train)
    scores = {
        "imaging": treatment_identification(morph_train.x, morph_train.labels, mt.x, mt.labels,
                                            seed).balanced_accuracy,
        "generated": treatment_identification(expr_train.x, expr_train.labels, generated.x,
                                              generated.labels, seed).balanced_accuracy,
    }  # fmt: skip
    for name, pop in (("imaging_generated", generated), ("imaging_real", expr_test)):
        x, g = fuse(mt.x, mt.groups, pop.x, pop.groups, rng)
        scores[name] = treatment_identification(
            ft_x, ft_y, x, _labels_of(g, mt), seed
        ).balanced_accuracy
    scores["gap_closure"] = gap_closure(scores["imaging"], scores["imaging_generated"],
                                        scores["imaging_real"])  # fmt: skip
    return scores


def _labels_of(groups: np.ndarray, ref: Cells) -> np.ndarray:
    lookup = pd.Series(ref.labels, index=ref.groups).groupby(level=0).first()
    return lookup.loc[groups].to_numpy()
