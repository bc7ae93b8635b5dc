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
    """Which groups to sequence: the ``budget`` wells whose measurement removes most expected
    error, chosen greedily.

    Rule (docs/uncertainty.md): a well's expected squared error is the square of its mean error
    scale (``uncertainty``; uncalibrated summaries: half the mean interval width at ``level``).
    Sequencing one well of a treatment measures that treatment: its training data then covers
    every well of it in the screen, so the expected reduction of choosing a well is the summed
    expected squared error of all the wells of its treatment. The treatment of largest reduction
    goes first, represented by its most uncertain well; then the next treatment. Wells flagged
    unlike the training data come before the rest. Control wells are left out: they are the
    reference every plate sequences anyway. Returns the ranked table (``rank``, group,
    ``priority`` = expected reduction, ``wells_informed``, ``confidence``, ``ood_flag``,
    ``mean_width``, ``reason`` and the well's metadata).
    """
    if budget < 1:
        raise InputError(f"--budget must be at least 1 (got {budget}).", "pass a positive number")
    obs, width = summary.obs, _width(summary, level)
    err = obs["uncertainty"].to_numpy(float) if "uncertainty" in obs else width / 2
    info = summary.uns.get(K.UNS, {})
    label = info.get("label_key")
    treatment = obs[label].astype(str).to_numpy() if label in obs else summary.obs_names.to_numpy()
    table = pd.DataFrame({"group": summary.obs_names, "treatment": treatment, "error": err,
                          "mean_width": width})  # fmt: skip
    has_conf = "confidence" in obs
    table["confidence"] = obs["confidence"].to_numpy(float) if has_conf else np.nan
    table["ood_flag"] = obs["ood_flag"].to_numpy(bool) if has_conf else False
    by_t = table.groupby("treatment")["error"]
    table["priority"] = (table["treatment"].map(by_t.apply(lambda e: float((e**2).sum())))
                         + table["ood_flag"] * 1e6)  # fmt: skip
    table["wells_informed"] = table["treatment"].map(by_t.size())
    if label in obs and info.get("control"):
        table = table[table["treatment"] != str(info["control"])]
    first = table.sort_values(["priority", "error"], ascending=False, kind="stable")
    picks = first.drop_duplicates("treatment").head(budget)
    picks = picks.assign(
        priority=picks["priority"] - picks["ood_flag"] * 1e6,
        reason=[_reason(r, np.median(err)) for _, r in picks.iterrows()],
    )
    picks.insert(0, "rank", np.arange(1, len(picks) + 1))
    extra = [c for c in obs.columns if c.startswith("Metadata_") or c in (K.TREATMENT,)]
    return picks.drop(columns=["treatment", "error"]).join(obs[extra], on="group").reset_index(
        drop=True)  # fmt: skip


def _width(summary: ad.AnnData, level: float | None) -> np.ndarray:
    levels = [float(v) for v in np.ravel(summary.uns.get(K.UNS, {}).get("levels", []))]
    if not levels:
        raise InputError("is not a `phenoseq generate --summary` output (no levels).",
                         "pass the --summary file")  # fmt: skip
    level = level if level is not None else (0.9 if 0.9 in levels else max(levels))
    col = f"mean_width_{level:g}"
    if col not in summary.obs:
        raise InputError(f"has no {col} column.", f"use one of the levels {levels}")
    return summary.obs[col].to_numpy(float)


def _reason(row: pd.Series, median_error: float) -> str:
    """Why a well is on the list, in words."""
    if row["ood_flag"]:
        return "unlike the training data (OOD)"
    parts = ["wide intervals" if row["error"] >= median_error else "moderate uncertainty"]
    if row["wells_informed"] > 1:
        parts.append(f"informs {int(row['wells_informed'])} wells of its treatment")
    return "; ".join(parts)


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
