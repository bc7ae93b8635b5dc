"""Metrics against real data, baselines and the split-half ceiling (DESIGN.md §4).

One implementation of each metric, used by the tests, the benchmarks and the report alike.
"""

from __future__ import annotations

from ..data.transforms import normalize_log1p, pseudobulk
from .distances import e_distance, energy_distance, median_bandwidth, mmd_rbf, subsample_to
from .identification import (
    IdentificationOutput,
    balanced_accuracy,
    fuse,
    gap_closure,
    treatment_identification,
)
from .profiles import (
    DegOverlapOutput,
    pearson,
    pearson_delta,
    r2_per_gene,
    top_k_deg_overlap,
)
from .space import ExpressionSpace

__all__ = [
    "DegOverlapOutput",
    "ExpressionSpace",
    "IdentificationOutput",
    "balanced_accuracy",
    "e_distance",
    "energy_distance",
    "fuse",
    "gap_closure",
    "median_bandwidth",
    "mmd_rbf",
    "normalize_log1p",
    "pearson",
    "pearson_delta",
    "pseudobulk",
    "r2_per_gene",
    "subsample_to",
    "top_k_deg_overlap",
    "treatment_identification",
]
