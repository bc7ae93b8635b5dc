"""Names and number formats shared by the console, the HTML report and the plots (no plotting
library imported here, so the console stays quick to start)."""

from __future__ import annotations

import numpy as np

from ..evaluate.baselines import REGISTRY
from ..evaluate.suite import BASELINES

METHODS = ("model", *BASELINES, "split_half")
LABELS = {
    "model": "PhenoSeq", "split_half": "split-half (ceiling)", "imaging": "imaging",
    "generated": "generated", "imaging_generated": "imaging + generated",
    "imaging_real": "imaging + real", "real": "real cells",
} | {name: b.label for name, b in REGISTRY.items()}  # fmt: skip


def method_entry(metrics: dict, name: str) -> dict:
    """The metrics of one method, wherever the schema keeps it."""
    if name == "model":
        return metrics["model"]
    if name == "split_half":
        return metrics["ceilings"]["split_half"]
    return metrics["baselines"].get(name, {})


def value(metrics: dict, name: str, metric: str, subset: str) -> float:
    v = method_entry(metrics, name).get(metric, {}).get(subset, {}).get("value")
    return float("nan") if v is None else float(v)


def fmt(v, missing: str = "–") -> str:
    """A metric value with 3 decimals; ``missing`` for None (null in JSON) or NaN/inf."""
    return missing if v is None or not np.isfinite(v) else f"{v:.3f}"


#: plain names of the metrics (reports and plots; metrics.json keeps the keys)
METRIC_NAMES = {
    "energy_distance": "Energy distance",
    "e_distance": "E-distance (scPerturb)",
    "mmd_rbf": "Kernel distance (MMD)",
    "pearson_pseudobulk": "Pseudo-bulk correlation",
    "pearson_delta": "Fold-change correlation",
    "deg_top50_overlap": "Top DE genes recovered",
    "deg_top50_direction": "DE direction agreement",
    "r2_per_gene_median": "Per-gene R² (median)",
}

#: one sentence per metric: what it measures and which way is better
GLOSSARY = {
    "energy_distance": "How far the generated cells' distribution is from the real cells' "
    "(30 principal components of the training expression): 0 when they are the same, larger "
    "when they differ. Lower is better.",
    "e_distance": "The E-distance of scPerturb and pertpy: the same formula with squared "
    "distances, as those tools compute it (so numbers compare with theirs); with squared "
    "distances it measures only how far apart the two means are (twice the squared distance "
    "of the means), never negative. Lower is better.",
    "mmd_rbf": "Maximum mean discrepancy with a Gaussian kernel, another distance between the "
    "two cell distributions, more sensitive to local structure (kernel width: the median "
    "distance between the group's real cells). Lower is better.",
    "pearson_pseudobulk": "Pearson correlation over genes of the average generated and average "
    "real cell of a group. High even for a poor model (genes differ in baseline level); read "
    "it beside the fold-change correlation. Higher is better.",
    "pearson_delta": "Pearson correlation over genes of the predicted and the real change vs "
    "the control (log fold change): does the model move the right genes the right way? "
    "Higher is better.",
    "deg_top50_overlap": "Share of the real top differentially expressed genes (Wilcoxon vs "
    "the control cells; top 50, or half the genes on small panels) among the predicted top "
    "genes. Higher is better.",
    "deg_top50_direction": "Share of the real top differentially expressed genes whose "
    "predicted change has the same sign. 0.5 is a coin flip. Higher is better.",
    "r2_per_gene_median": "For each gene, R² of its average level across the held-out groups "
    "(predicted vs real); the median over genes. 0 is as good as predicting every group's "
    "mean; below 0 is worse. Higher is better.",
}

NEGATIVE_DISTANCE = (
    "Energy distance and MMD are unbiased estimates: for two samples of the same distribution "
    "their expected value is exactly 0, so sampling noise makes them slightly negative about "
    "half of the time. A small negative value means 'indistinguishable from the real cells at "
    "this number of cells', not an error; the split-half ceiling shows the noise level."
)
