"""The evaluation protocol of DESIGN.md §4 on held-out groups: the model against every baseline
and the split-half ceiling, treatment identification and retrieval.

:func:`score` works on populations already in the evaluation views (log1p genes for
expression, standardised features for morphology); :func:`phenoseq.evaluate.run.evaluate`
reads a model, its training data and the held-out files and calls it. Every distribution
metric is computed in one fixed space: the 30-PC projection fitted on the training expression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist

from ..errors import InputError
from .baselines import REGISTRY
from .cells import Cells, EvaluationData
from .deg import deg_overlap
from .distances import e_distance, energy_distance, median_bandwidth, mmd_rbf, subsample_to
from .identification import fuse, gap_closure, treatment_identification
from .profiles import pearson, pearson_delta, r2_per_gene
from .retrieval import chance_map, map_per_label, mean_average_precision
from .space import ExpressionSpace

# metric -> whether lower is better (the report and the console use this)
METRICS: dict[str, bool] = {
    "energy_distance": True,
    "e_distance": True,
    "mmd_rbf": True,
    "pearson_pseudobulk": False,
    "pearson_delta": False,
    "deg_top50_overlap": False,
    "deg_top50_direction": False,
    "r2_per_gene_median": False,
}
BASELINES = tuple(REGISTRY)  # the baselines, in the order every table shows them
INPUTS = ("imaging", "generated", "imaging_generated", "imaging_real")
SUBSETS = ("seen", "unseen", "all")


@dataclass
class Evaluation:
    """What :func:`score` returns: the ``metrics.json`` document and the arrays behind the
    plots (``plots``: name -> array, saved as ``.npz``)."""

    metrics: dict
    plots: dict[str, np.ndarray] = field(default_factory=dict)


def _control_cells(data: EvaluationData) -> tuple[np.ndarray | None, str]:
    """Real control cells: the held-out ones when present (same batch), else training ones."""
    if data.control is None:
        return None, "none"
    for cells, source in ((data.expr_test, "held-out"), (data.expr_train, "training")):
        x = cells.x[cells.labels == data.control]
        if len(x) >= 2:
            return x, source
    return None, "none"


def _per_group(
    pred: Cells,
    real: Cells,
    space: ExpressionSpace,
    bandwidth: dict[str, float],
    control: np.ndarray | None,
    control_label: str | None,
    rng: np.random.Generator,
    k: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per-group metrics of ``pred`` against ``real`` (generated cells subsampled to the real
    size), plus the two mean matrices (group x gene) the per-gene R² needs."""
    rows, pred_means, real_means = {}, {}, {}
    for g in np.unique(real.groups):
        r, p = real.group(g), pred.group(g)
        if len(r) < 2 or len(p) < 2:
            continue
        p = subsample_to(p, len(r), rng)
        rp, pp = space.transform(r), space.transform(p)
        m_r, m_p = r.mean(axis=0), p.mean(axis=0)
        row = {
            "energy_distance": energy_distance(pp, rp),
            "e_distance": e_distance(pp, rp),
            "mmd_rbf": mmd_rbf(pp, rp, bandwidth[g]) if bandwidth[g] > 0 else float("nan"),
            "pearson_pseudobulk": pearson(m_p, m_r),
        }
        is_control = real.labels[real.groups == g][0] == control_label
        if control is not None and not is_control:
            c = control.mean(axis=0)
            row["pearson_delta"] = pearson_delta(m_p, m_r, c)
            deg = deg_overlap(p, r, control, k)
            row["deg_top50_overlap"] = deg.overlap
            row["deg_top50_direction"] = deg.direction_agreement
        rows[g] = row
        pred_means[g], real_means[g] = m_p, m_r
    cols = [m for m in METRICS if m != "r2_per_gene_median"]
    return (
        pd.DataFrame.from_dict(rows, orient="index").reindex(columns=cols),
        pd.DataFrame.from_dict(pred_means, orient="index"),
        pd.DataFrame.from_dict(real_means, orient="index"),
    )


def _summarize(
    per_group: pd.DataFrame,
    pred_means: pd.DataFrame,
    real_means: pd.DataFrame,
    subset_of: Callable[[str], str],
) -> tuple[dict, np.ndarray]:
    """The metrics.json entry of one method, and its per-gene R² over all held-out groups."""
    out: dict = {}
    subsets = pd.Series({g: subset_of(g) for g in per_group.index}, dtype=object)
    for metric in per_group.columns:
        col = per_group[metric]
        entry = {"per_group": col.to_dict()}
        for s in SUBSETS:
            v = col if s == "all" else col[subsets.reindex(col.index) == s]
            v = v.dropna()
            entry[s] = {"value": float(v.mean()) if len(v) else float("nan"), "n": len(v)}
        out[metric] = entry
    r2_all = np.full(real_means.shape[1] if real_means.size else 0, np.nan)
    entry = {}
    for s in SUBSETS:
        keep = [g for g in real_means.index if s == "all" or subset_of(g) == s]
        if len(keep) >= 2:
            r2 = r2_per_gene(pred_means.loc[keep].to_numpy(), real_means.loc[keep].to_numpy())
            entry[s] = {"value": float(np.nanmedian(r2)) if np.isfinite(r2).any() else float("nan"),
                        "n": len(keep)}  # fmt: skip
            if s == "all":
                r2_all = r2
        else:
            entry[s] = {"value": float("nan"), "n": len(keep)}
    out["r2_per_gene_median"] = entry
    return out, r2_all


def _bandwidth(x: np.ndarray) -> float:
    """The median heuristic; for a group whose cells are mostly identical (e.g. very low counts)
    the mean pairwise distance instead, and 0 (MMD undefined) if all cells are identical."""
    try:
        return median_bandwidth(x)
    except InputError:
        return float(pdist(x).mean())


def _split_halves(real: Cells, rng: np.random.Generator) -> tuple[Cells, Cells]:
    """Two random halves of every group (the split-half ceiling's prediction and truth)."""
    a = np.zeros(len(real.x), dtype=bool)
    for g in np.unique(real.groups):
        rows = np.flatnonzero(real.groups == g)
        a[rng.permutation(rows)[: len(rows) // 2]] = True
    return real.take(a), real.take(~a)


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return [(x - mean) / std for x in (train, *others)]


def _identification(
    data: EvaluationData, pcs: dict[str, Cells], rng: np.random.Generator, seed: int
) -> tuple[dict, dict[str, np.ndarray]]:
    """Balanced accuracy on seen treatments; retrieval mAP among unseen treatments."""
    seen = data.seen_labels
    m_tr, m_te = data.morph_train, data.morph_test
    e_tr, e_te, gen = pcs["train"], pcs["real"], pcs["model"]
    m_tr_x, m_te_x = _standardize(m_tr.x, m_te.x)
    e_tr_x, e_te_x, gen_x = _standardize(e_tr.x, e_te.x, gen.x)
    m_tr, m_te = Cells(m_tr_x, m_tr.groups, m_tr.labels), Cells(m_te_x, m_te.groups, m_te.labels)
    e_tr, e_te = Cells(e_tr_x, e_tr.groups, e_tr.labels), Cells(e_te_x, e_te.groups, e_te.labels)
    gen = Cells(gen_x, gen.groups, gen.labels)
    # only morphology groups that have expression on both sides can be fused
    m_te = m_te.take(np.isin(m_te.groups, e_te.groups) & np.isin(m_te.groups, gen.groups))
    m_tr = m_tr.take(np.isin(m_tr.groups, e_tr.groups))

    def fused(morph: Cells, expr: Cells) -> Cells:
        x, g = fuse(morph.x, morph.groups, expr.x, expr.groups, rng)
        return Cells(x, g, morph.label_of().loc[g].to_numpy())

    tests = {"imaging": m_te, "generated": gen, "imaging_generated": fused(m_te, gen),
             "imaging_real": fused(m_te, e_te)}  # fmt: skip
    fused_train = fused(m_tr, e_tr)  # one classifier for both fused inputs
    trains = {"imaging": m_tr, "generated": e_tr, "imaging_generated": fused_train,
              "imaging_real": fused_train}  # fmt: skip
    out: dict = {"balanced_accuracy": {}, "unseen_retrieval_map": {}}
    plots: dict[str, np.ndarray] = {}
    for name in INPUTS:
        test = tests[name].take(np.isin(tests[name].labels, list(seen)))
        if len(test.x) and len(np.unique(trains[name].labels)) >= 2:
            res = treatment_identification(trains[name].x, trains[name].labels, test.x,
                                           test.labels, seed)  # fmt: skip
            out["balanced_accuracy"][name] = res.balanced_accuracy
            plots[f"confusion_{name}"] = res.confusion
            plots["confusion_labels"] = np.asarray(res.labels, dtype=str)
        else:
            out["balanced_accuracy"][name] = float("nan")
        unseen = tests[name].take(~np.isin(tests[name].labels, list(seen)))
        out["unseen_retrieval_map"][name] = (
            mean_average_precision(unseen.x, unseen.labels)
            if len(np.unique(unseen.labels)) >= 2 else float("nan")
        )  # fmt: skip
    for key, scores in (("gap_closure", out["balanced_accuracy"]),
                        ("unseen_gap_closure", out["unseen_retrieval_map"])):  # fmt: skip
        out[key] = gap_closure(scores["imaging"], scores["imaging_generated"],
                               scores["imaging_real"])  # fmt: skip
    # the chance lines: a random classifier over the training classes; random rankings
    out["chance_balanced_accuracy"] = 1.0 / len(np.unique(trains["imaging"].labels))
    unseen_labels = m_te.labels[~np.isin(m_te.labels, list(seen))]
    out["chance_unseen_retrieval_map"] = (
        float(chance_map(unseen_labels).mean())
        if len(np.unique(unseen_labels)) >= 2 else float("nan")
    )  # fmt: skip
    out["n_seen_labels"] = int(len(set(data.test_labels()) & seen))
    out["n_unseen_labels"] = int(len(set(data.test_labels()) - seen))
    return out, plots


def _by_subset(per_label: pd.Series, seen: set[str]) -> dict[str, float]:
    """Mean of per-label values over seen / unseen / all labels (NaN where none)."""
    entry = {s: float("nan") for s in SUBSETS}
    is_seen = per_label.index.isin(list(seen))
    for s, mask in (("seen", is_seen), ("unseen", ~is_seen),
                    ("all", np.ones(len(per_label), bool))):  # fmt: skip
        if mask.any():
            entry[s] = float(per_label[mask].mean())
    return entry


def _retrieval(
    populations: dict[str, Cells], seen: set[str], n_cells: int, rng: np.random.Generator
) -> tuple[dict, dict]:
    """Treatment-retrieval mAP of every population's cells (PCs), by seen/unseen/all labels,
    and the chance level of the real cells' sample (random rankings)."""
    out, chance = {}, {s: float("nan") for s in SUBSETS}
    for name, pop in populations.items():
        pop = pop.per_group(n_cells, rng)
        entry = {s: float("nan") for s in SUBSETS}
        if len(np.unique(pop.labels)) >= 2:
            entry = _by_subset(map_per_label(pop.x, pop.labels), seen)
            if name == "real":
                chance = _by_subset(chance_map(pop.labels), seen)
        out[name] = entry
    return out, chance


def top_fold_changes(
    pred_means: pd.DataFrame, real_means: pd.DataFrame, control: np.ndarray | None,
    genes: list[str], is_control: dict[str, bool], n: int = 10,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Each treated group's ``n`` genes of largest real change vs the control mean, with the
    real and the predicted change (log1p units): the report's fold-change panels."""
    groups = [g for g in real_means.index if not is_control.get(g, False)]
    if control is None or not groups:
        return {}
    c = control.mean(axis=0)
    real = real_means.loc[groups].to_numpy() - c
    pred = pred_means.loc[groups].to_numpy() - c
    n = min(n, real.shape[1])
    top = np.argsort(-np.abs(real), axis=1, kind="stable")[:, :n]
    return {
        "fold_change_groups": np.asarray(groups, dtype=str),
        "fold_change_genes": np.asarray(genes, dtype=str)[top],
        "fold_change_real": np.take_along_axis(real, top, axis=1),
        "fold_change_model": np.take_along_axis(pred, top, axis=1),
    }


def score(
    data: EvaluationData,
    methods: dict[str, Cells],
    space: ExpressionSpace,
    seed: int = 0,
    k: int = 50,
    n_retrieval_cells: int = 50,
    n_plot_cells: int = 100,
) -> Evaluation:
    """Score the model and the baselines against the real held-out cells.

    Parameters
    ----------
    data
        Training and held-out populations (:class:`EvaluationData`).
    methods
        ``"model"`` and any baselines: log1p cells per held-out group.
    space
        The evaluation PCA fitted on the training expression.
    k
        Number of top DEGs (at most half the genes; the value used is ``settings.deg_k``).
    n_retrieval_cells, n_plot_cells
        Cells per group used for retrieval mAP and kept for the scatter plots.
    """
    if "model" not in methods:
        raise InputError("no 'model' population to evaluate.", "pass methods={'model': ...}")
    k = max(1, min(k, len(data.genes) // 2))  # small panels: top half (settings.deg_k says)
    rng = np.random.default_rng(seed)
    real = data.expr_test
    test_labels = data.test_labels()
    seen = data.seen_labels

    def subset_of(g: str) -> str:
        return "seen" if test_labels[g] in seen else "unseen"

    real_pcs = space.transform(real.x)
    bandwidth = {g: _bandwidth(real_pcs[real.groups == g]) for g in test_labels.index
                 if (real.groups == g).sum() >= 2}  # fmt: skip
    control, control_source = _control_cells(data)
    metrics: dict = {"model": {}, "baselines": {}, "ceilings": {}}
    plots: dict[str, np.ndarray] = {}
    half_a, half_b = _split_halves(real, rng)
    entries = {**methods, "split_half": half_a}
    for name, pred in entries.items():
        truth = half_b if name == "split_half" else real
        per_group, pm, rm = _per_group(pred, truth, space, bandwidth, control, data.control, rng,
                                       k)  # fmt: skip
        entry, r2 = _summarize(per_group, pm, rm, subset_of)
        plots[f"r2_{name}"] = r2
        if name == "model":
            metrics["model"] = entry
            is_ctrl = {g: lab == data.control for g, lab in test_labels.items()}
            plots |= top_fold_changes(pm, rm, control, data.genes, is_ctrl)
        elif name == "split_half":
            metrics["ceilings"]["split_half"] = entry
        else:
            metrics["baselines"][name] = entry
    pcs = {name: Cells(space.transform(p.x), p.groups, p.labels) for name, p in methods.items()}
    pcs["real"] = Cells(real_pcs, real.groups, real.labels)
    pcs["train"] = Cells(space.transform(data.expr_train.x), data.expr_train.groups,
                         data.expr_train.labels)  # fmt: skip
    ident, ident_plots = _identification(data, pcs, rng, seed)
    metrics["treatment_identification"] = ident
    plots |= ident_plots
    retrieval_pops = {"real": pcs["real"], **{n: pcs[n] for n in methods}}
    metrics["retrieval_map"], metrics["retrieval_chance"] = _retrieval(
        retrieval_pops, seen, n_retrieval_cells, rng
    )
    metrics["groups"] = {
        g: {"label": lab, "seen": lab in seen, "is_control": lab == data.control,
            "n_real": int((real.groups == g).sum())}
        for g, lab in test_labels.items()
    }  # fmt: skip
    metrics["settings"] = {
        "space": {"n_pcs": space.n_pcs, "fitted_on": "training expression (log1p 1e4)",
                  "explained_variance": float(space.explained_variance_ratio.sum())},
        "n_genes": len(data.genes), "deg_k": k, "deg_test": "wilcoxon rank-sum vs control",
        "control": data.control, "control_cells": control_source,
        "mmd_bandwidth": "median heuristic of each group's real cells (same for all methods)",
        "subsample": "generated cells subsampled to the real group size",
        "split_half": "half of each real group vs the other half", "seed": seed,
    }  # fmt: skip
    for name in ("real", "model"):
        pop = pcs[name].per_group(n_plot_cells, rng)
        plots[f"scatter_{name}_xy"], plots[f"scatter_{name}_group"] = pop.x[:, :2], pop.groups
    plots["pc_variance"] = space.explained_variance_ratio[:2]
    return Evaluation(metrics, plots)
