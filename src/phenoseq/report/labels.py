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
