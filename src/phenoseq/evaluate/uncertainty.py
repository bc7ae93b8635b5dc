"""Metrics of the uncertainty: interval coverage and width against real held-out pseudo-bulks
(and deltas vs the control), seen vs unseen treatments, and the OOD AUROC."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .. import _keys as K
from ..errors import InputError
from ..model import PhenoSeqModel, real_pseudobulk
from ..uncertainty import novel_groups


def coverage(summary: ad.AnnData, truth: pd.DataFrame, prefix: str = "") -> dict:
    """Empirical coverage and mean width per level over (group, gene) pairs of the groups in
    both ``summary`` and ``truth`` (groups x genes real values: pseudo-bulks or deltas)."""
    groups = [g for g in summary.obs_names if g in truth.index]
    rows = [summary.obs_names.get_loc(g) for g in groups]
    y = truth.loc[groups, list(summary.var_names)].to_numpy()
    out = {}
    for lv in summary.uns[K.UNS]["levels"]:
        lo = summary.layers[f"{prefix}lower_{lv:g}"][rows]
        hi = summary.layers[f"{prefix}upper_{lv:g}"][rows]
        ok = np.isfinite(lo).all(axis=1)
        inside = (y[ok] >= lo[ok]) & (y[ok] <= hi[ok])
        out[f"{lv:g}"] = {"coverage": float(inside.mean()) if ok.any() else None,
                          "mean_width": float((hi[ok] - lo[ok]).mean()) if ok.any() else None,
                          "n_groups": int(ok.sum())}  # fmt: skip
    return out


def auroc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney)."""
    pos, neg = np.asarray(scores_pos, float), np.asarray(scores_neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    truth = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(truth, np.r_[pos, neg]))


def _delta_truth(real: pd.DataFrame, ctrl: pd.Series, names: list[str]) -> pd.DataFrame | None:
    have = [g for g in names if ctrl[g] and ctrl[g] != g and ctrl[g] in real.index]
    if not have:
        return None
    return pd.DataFrame(real.loc[have].to_numpy() - real.loc[ctrl[have].to_numpy()].to_numpy(),
                        index=have, columns=real.columns)  # fmt: skip


def score_summary(model: PhenoSeqModel, summary: ad.AnnData, expression: ad.AnnData) -> dict:
    """Coverage and width per level of the pseudo-bulk and delta intervals against real
    held-out cells, separately for groups of seen and unseen treatments, and the OOD AUROC
    (unseen vs seen groups by ``ood_score``): the ``uncertainty`` section of ``metrics.json``."""
    real = real_pseudobulk(model, expression)
    groups = [g for g in summary.obs_names if g in real.index]
    if not groups:
        raise InputError(
            "the summary shares no group with the held-out expression.",
            "pass the --summary generated from the held-out morphology",
        )
    novel = set(novel_groups(model, groups))
    ctrl = summary.obs["control_group"] if "control_group" in summary.obs else None
    out: dict = {"levels": [float(v) for v in np.ravel(summary.uns[K.UNS]["levels"])],
                 "intervals": summary.uns[K.UNS].get("intervals"), "coverage": {}}  # fmt: skip
    for subset, names in (("seen", [g for g in groups if g not in novel]),
                          ("unseen", [g for g in groups if g in novel])):  # fmt: skip
        if not names:
            continue
        out["coverage"][f"pseudobulk/{subset}"] = coverage(summary[names], real)
        delta = None if ctrl is None else _delta_truth(real, ctrl, names)
        if delta is not None:
            out["coverage"][f"delta/{subset}"] = coverage(summary[list(delta.index)], delta,
                                                          "delta_")  # fmt: skip
    if "ood_score" in summary.obs:
        s = summary.obs.loc[groups, "ood_score"]
        is_novel = np.array([g in novel for g in groups])
        out["ood_auroc"] = auroc(s[is_novel].to_numpy(), s[~is_novel].to_numpy())
        flag = summary.obs.loc[groups, "ood_flag"].astype(bool).to_numpy()
        out["flagged"] = {"seen": int(flag[~is_novel].sum()), "unseen": int(flag[is_novel].sum())}
    return out
