"""Treatment retrieval: mean average precision with ``copairs`` (DESIGN.md §4).

Every profile queries all others, ranked by cosine similarity; positives share its label,
negatives have another label. The average precision (AP) of each query comes from
``copairs.map.average_precision``; the mAP of a label is the mean AP of its queries and the
reported mAP is the mean over labels (each treatment weighs the same, as copairs'
``mean_average_precision`` groups them). The chance level is about the share of positives.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..data.arrays import as_labels, as_matrix
from ..errors import InputError


def average_precision(profiles: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AP of every profile retrieving the others of its label, ``"n_profiles"``.

    NaN for profiles whose label has no other profile (no positive pair).
    """
    from copairs.map import average_precision as copairs_ap

    x = as_matrix(profiles, "profiles", 2)
    y = as_labels(labels, len(x), "labels")
    if len(np.unique(y)) < 2:
        raise InputError("retrieval needs at least two labels.", "pass profiles of 2+ treatments")
    meta = pd.DataFrame({"label": y})
    logging.getLogger("copairs").setLevel(logging.WARNING)
    out = copairs_ap(meta, x, ["label"], [], [], ["label"], progress_bar=False)
    return out["average_precision"].to_numpy(dtype=np.float64)


def map_per_label(profiles: np.ndarray, labels: np.ndarray) -> pd.Series:
    """mAP of every label: the mean AP of its profiles (labels with a single profile dropped)."""
    ap = average_precision(profiles, labels)
    return pd.Series(ap).groupby(np.asarray(labels).astype(str)).mean().dropna()


def chance_average_precision(n_positive: int, n_others: int) -> float:
    """Expected AP of a query whose ``n_others`` candidates, ``n_positive`` of them positive,
    are ranked at random (exact: the mean over ranks ``i`` of P(positive at i) times the
    expected precision at i given a positive there). About the share of positives; NaN
    without a positive."""
    if n_positive < 1 or n_others < 1:
        return float("nan")
    i = np.arange(1, n_others + 1)
    slope = (n_positive - 1) / (n_others - 1) if n_others > 1 else 0.0
    return float(np.mean((1 + slope * (i - 1)) / i))


def chance_map(labels: np.ndarray) -> pd.Series:
    """The mAP of every label (as :func:`map_per_label` averages it) when every query's
    candidates are ranked at random: the chance line of retrieval."""
    labels = np.asarray(labels).astype(str)
    names, counts = np.unique(labels, return_counts=True)
    n = len(labels)
    return pd.Series({lab: chance_average_precision(int(c) - 1, n - 1)
                      for lab, c in zip(names, counts, strict=True) if c > 1})  # fmt: skip


def mean_average_precision(profiles: np.ndarray, labels: np.ndarray) -> float:
    """Mean over labels of :func:`map_per_label` (each treatment weighs the same)."""
    per_label = map_per_label(profiles, labels)
    return float(per_label.mean()) if len(per_label) else float("nan")
