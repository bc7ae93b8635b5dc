"""Calibrated uncertainty, split by concept:

- ``draws``: K generated pseudo-bulks per group, deltas vs the same batch's control;
- ``conformal``: nonconformity scores, their finite-sample quantile, intervals;
- ``ood``: the confidence / out-of-distribution score of a group;
- ``calibration``: split-conformal calibration on held-out groups (``calibration.json``);
- ``summary``: the per-group summary AnnData, and ``generate --summary``;
- ``suggest``: which wells to sequence next.

The metrics that score the uncertainty (coverage, AUROC) live with the other metrics in
:mod:`phenoseq.evaluate.uncertainty`. docs/uncertainty.md says how to read and act on these.
"""

from __future__ import annotations

from ..config import LEVELS, UncertaintyConfig, parse_levels
from .calibration import CALIBRATION_FILE, Calibration, calibrate, calibrate_model
from .conformal import conformal_quantile, interval, nonconformity, per_gene_quantiles
from .draws import Draws, draw
from .ood import confidence, novel_groups, ood_distances, ood_score
from .suggest import suggest, suggest_file
from .summary import GenerateOutput, generate_outputs, summarize

__all__ = [
    "CALIBRATION_FILE",
    "LEVELS",
    "Calibration",
    "Draws",
    "GenerateOutput",
    "UncertaintyConfig",
    "calibrate",
    "calibrate_model",
    "confidence",
    "conformal_quantile",
    "draw",
    "generate_outputs",
    "interval",
    "nonconformity",
    "novel_groups",
    "ood_distances",
    "ood_score",
    "parse_levels",
    "per_gene_quantiles",
    "suggest",
    "suggest_file",
    "summarize",
]
