"""Metrics of the uncertainty: interval coverage and width against real held-out pseudo-bulks
(and deltas vs the control), seen vs unseen treatments; whether the confidence ranks the errors
(selective prediction: the risk–coverage curve, and the AUROC for "this group's error is in the
top quartile"); the OOD AUROC; and the interval width beside the train-mean baseline's errors."""

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


#: group scores that may rank the errors (higher = less trustworthy), by obs column
RANKERS = {"confidence": lambda obs: -obs["confidence"], "uncertainty": lambda obs:
           obs["uncertainty"], "ood_score": lambda obs: obs["ood_score"],
           "interval_width": lambda obs: obs["mean_width_0.9"]}  # fmt: skip


def risk_coverage(error: np.ndarray, score: np.ndarray) -> dict:
    """Selective prediction: groups ranked by ``score`` (lower = kept first); the mean
    ``error`` of the kept share at every coverage, its area (AURC), and the same for a random
    order (the mean error) and for the oracle order (by the error itself)."""
    order = np.argsort(score, kind="stable")
    k = np.arange(1, len(error) + 1)
    risk = np.cumsum(error[order]) / k
    oracle = np.cumsum(np.sort(error)) / k
    return {"coverage": (k / len(error)).tolist(), "risk": risk.tolist(),
            "aurc": float(risk.mean()), "oracle_aurc": float(oracle.mean()),
            "random_aurc": float(error.mean())}  # fmt: skip


def error_ranking(summary: ad.AnnData, real: pd.DataFrame, groups: list[str]) -> dict:
    """Per-group error (RMSE over genes of the predicted vs the real pseudo-bulk); for every
    available score, the AUROC for top-quartile error and the risk–coverage curve."""
    pred = pd.DataFrame(summary[groups].layers["mean"], index=groups, columns=summary.var_names)
    error = np.sqrt(((pred - real.loc[groups, summary.var_names]) ** 2).mean(axis=1)).to_numpy()
    top = error >= np.quantile(error, 0.75)
    obs = summary.obs.loc[groups]
    out = {"error": dict(zip(groups, error.tolist(), strict=True)), "auroc_top_quartile": {},
           "risk_coverage": {}}  # fmt: skip
    for name, fn in RANKERS.items():
        if name == "interval_width" and "mean_width_0.9" not in obs or (
                name != "interval_width" and name not in obs):  # fmt: skip
            continue
        score = np.asarray(fn(obs), float)
        out["auroc_top_quartile"][name] = auroc(score[top], score[~top])
        out["risk_coverage"][name] = risk_coverage(error, score)
    return out


def width_vs_train_mean(summary: ad.AnnData, model: PhenoSeqModel, real: pd.DataFrame,
                        groups: list[str], subsets: dict | None = None) -> dict:  # fmt: skip
    """Per level, the mean interval width beside the width the train-mean baseline would need:
    twice the quantile of its absolute errors (every held-out group predicted by the mean
    training pseudo-bulk) — intervals wider than that say nothing a constant would not. Over
    ``groups``, and per subset of ``subsets`` (name -> groups) under ``"<level>/<name>"``."""
    reg = model.registry
    train = [i for i, r in enumerate(reg.group_roles) if r == "train"]
    mean = np.nanmean(model.group_stats["pseudobulk"][train], axis=0)
    out = {}
    for name, names in {"": groups, **(subsets or {})}.items():
        if not names:
            continue
        err = np.abs(real.loc[names, summary.var_names].to_numpy() - mean)
        part = summary[names]
        for lv in np.ravel(summary.uns[K.UNS]["levels"]):
            width = part.layers[f"upper_{lv:g}"] - part.layers[f"lower_{lv:g}"]
            out[f"{lv:g}" + (f"/{name}" if name else "")] = {
                "mean_width": float(width.mean()),
                "train_mean_width": float(2 * np.quantile(err, lv)),
            }
    return out


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
    subsets = {"seen": [g for g in groups if g not in novel],
               "unseen": [g for g in groups if g in novel]}  # fmt: skip
    out["width_vs_train_mean"] = width_vs_train_mean(summary, model, real, groups, subsets)
    if "ood_score" in summary.obs:
        is_novel = np.array([g in novel for g in groups])
        obs = summary.obs.loc[groups]
        out["ood_auroc"] = auroc(obs["ood_score"][is_novel], obs["ood_score"][~is_novel])
        if "uncertainty" in obs:
            out["ood_auroc_uncertainty"] = auroc(obs["uncertainty"][is_novel],
                                                 obs["uncertainty"][~is_novel])  # fmt: skip
        flag = obs["ood_flag"].astype(bool).to_numpy()
        out["flagged"] = {"seen": int(flag[~is_novel].sum()), "unseen": int(flag[is_novel].sum())}
        out["error_ranking"] = error_ranking(summary, real, groups)
    return out
