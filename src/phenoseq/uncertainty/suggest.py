"""Which wells to sequence next, from a per-group summary."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .. import _keys as K
from ..errors import InputError
from ..io import atomic_path


def suggest(summary: ad.AnnData, budget: int, level: float | None = None) -> pd.DataFrame:
    """Which groups to sequence: the ``budget`` groups where a measurement teaches most.

    Priority = mean of two percentiles over the groups: novelty (``1 - confidence``) and
    uncertainty (mean interval width at ``level``, default the widest calibrated level below 1
    that is 0.9 when present); flagged groups (``ood_flag``) come first. Without a confidence
    (uncalibrated summary) only the width counts. Returns the ranked table (``rank``, group,
    ``priority``, ``confidence``, ``ood_flag``, ``mean_width``, ``reason``).
    """
    if budget < 1:
        raise InputError(f"--budget must be at least 1 (got {budget}).", "pass a positive number")
    levels = [float(v) for v in np.ravel(summary.uns.get(K.UNS, {}).get("levels", []))]
    if not levels:
        raise InputError("is not a `phenoseq generate --summary` output (no levels).",
                         "pass the --summary file")  # fmt: skip
    level = level if level is not None else (0.9 if 0.9 in levels else max(levels))
    col = f"mean_width_{level:g}"
    if col not in summary.obs:
        raise InputError(f"has no {col} column.", f"use one of the levels {levels}")
    obs = summary.obs
    width = obs[col].to_numpy(float)
    pct = lambda v: pd.Series(v).rank(pct=True).to_numpy()  # noqa: E731
    table = pd.DataFrame({"group": summary.obs_names, "mean_width": width})
    if "confidence" in obs:
        conf = obs["confidence"].to_numpy(float)
        flag = obs["ood_flag"].to_numpy(bool)
        table["confidence"], table["ood_flag"] = conf, flag
        table["priority"] = 0.5 * (pct(-conf) + pct(width)) + flag.astype(float)
    else:
        table["confidence"], table["ood_flag"] = np.nan, False
        table["priority"] = pct(width)
    wide = width >= np.median(width)
    table["reason"] = np.where(
        table["ood_flag"], "unlike the training data (OOD)",
        np.where(table["confidence"] < 0.25, "low confidence",
                 np.where(wide, "wide intervals", "lower priority")),
    )  # fmt: skip
    table = table.sort_values("priority", ascending=False, kind="stable").head(budget)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    extra = [c for c in obs.columns if c.startswith("Metadata_") or c in (K.TREATMENT,)]
    return table.join(obs[extra], on="group").reset_index(drop=True)


def suggest_file(summary: str | Path, budget: int, out: str | Path,
                 level: float | None = None) -> pd.DataFrame:  # fmt: skip
    """``phenoseq suggest``: rank the groups of a summary file, write the top ``budget`` as a
    table (``.csv``: comma-separated, else tab-separated); returns it."""
    summary, out = Path(summary), Path(out)
    if not summary.is_file():
        raise InputError("does not exist.", "pass the --summary file of `generate`", summary)
    table = suggest(ad.read_h5ad(summary), budget, level)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="," if out.suffix == ".csv" else "\t", index=False)
    return table
