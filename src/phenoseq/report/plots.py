"""The evaluation report's figures, drawn with matplotlib from ``metrics.json`` and its plot
data.

Each function returns a :class:`matplotlib.figure.Figure` (the Agg backend; nothing is shown).
Figures are at most 12.8 inches wide (1280 px at the report's 100 dpi) with 10-12 pt text, so
they stay legible when the page scales them down to a 1000 px window.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..evaluate.suite import BASELINES, INPUTS, METRICS  # noqa: E402
from .labels import LABELS, METHODS, METRIC_NAMES, method_entry, value  # noqa: E402

MODEL, BASELINE, CEILING, REAL, UNSEEN = "#d1495b", "#8d99ae", "#2e86ab", "#444444", "#edae49"
CHANCE = dict(color="#222", ls=":", lw=1.4)


def _color(name: str) -> str:
    return MODEL if name == "model" else CEILING if name == "split_half" else BASELINE


def _per_group(metrics: dict, name: str, metric: str, subset: str) -> np.ndarray:
    """A method's per-group values of a metric among the seen / unseen groups."""
    groups = metrics.get("groups", {})
    per = method_entry(metrics, name).get(metric, {}).get("per_group", {}) or {}
    want = subset == "seen"
    vals = [v for g, v in per.items() if v is not None and groups.get(g, {}).get("seen") == want]
    return np.asarray(vals, dtype=float)


def metric_bars(metrics: dict, plots: dict | None = None) -> Figure:
    """One panel per metric: every method's mean over groups (bars: seen solid, unseen
    hatched) and each group's value (dots): the spread over groups."""
    fig, axes = plt.subplots(2, 4, figsize=(12.8, 7.6), constrained_layout=True, sharey=True)
    y = np.arange(len(METHODS))
    rng = np.random.default_rng(0)
    for ax, (metric, lower) in zip(axes.ravel(), METRICS.items(), strict=False):
        ax.tick_params(axis="y", labelleft=ax in axes[:, 0])
        for j, subset in enumerate(("seen", "unseen")):
            vals = np.array([value(metrics, m, metric, subset) for m in METHODS])
            pos = y + (j - 0.5) * 0.38
            ax.barh(pos, np.nan_to_num(vals), height=0.36, color=[_color(m) for m in METHODS],
                    hatch="//" if j else None, edgecolor="white",
                    alpha=1.0 if j == 0 else 0.75)  # fmt: skip
            for k, m in enumerate(METHODS):
                pts = _per_group(metrics, m, metric, subset)
                jitter = rng.uniform(-0.1, 0.1, len(pts))
                ax.scatter(pts, pos[k] + jitter, s=7, color="#111", alpha=0.55, linewidths=0,
                           zorder=3)  # fmt: skip
        ax.axvline(0, color="#666", lw=0.8)
        ax.set_yticks(y, [LABELS[m] for m in METHODS], fontsize=11)
        ax.set_title(f"{METRIC_NAMES[metric]}\n({'lower' if lower else 'higher'} is better)",
                     fontsize=11)  # fmt: skip
        ax.tick_params(axis="x", labelsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].invert_yaxis()  # shared: once
    ax = axes.ravel()[-1]
    ax.axis("off")
    ax.text(0.0, 0.5, "bars: mean over held-out groups\n  solid: seen treatments\n"
            "  hatched: unseen treatments\ndots: one per group (the spread)\n\n"
            "red: PhenoSeq, grey: baselines,\nblue: split-half ceiling\n"
            "(no bar: not defined)", fontsize=11, va="center")  # fmt: skip
    return fig


def _order(groups: dict, names) -> list[str]:
    """Groups with seen treatments first, then unseen, by label."""
    return sorted(names, key=lambda g: (not groups[g]["seen"], groups[g]["label"], g))


def _pick(groups: dict, names, max_panels: int) -> list[str]:
    order = _order(groups, names)
    seen = [g for g in order if groups[g]["seen"]]
    unseen = [g for g in order if not groups[g]["seen"]]
    n_unseen = min(len(unseen), max_panels // 3 if seen else max_panels)
    return seen[: max_panels - n_unseen] + unseen[:n_unseen]


def _title(groups: dict, g: str) -> str:
    info = groups.get(g, {"label": g, "seen": True})
    return f"{info['label']} ({'seen' if info['seen'] else 'UNSEEN'})"


def _grid(n: int, cols: int, w: float, h: float):
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


def fold_changes(metrics: dict, plots: dict, max_panels: int = 12) -> Figure:
    """Each treatment's genes of largest real change vs control: real (black) and predicted
    (red) log fold change, by gene name."""
    groups = metrics["groups"]
    names = plots["fold_change_groups"].astype(str).tolist()
    chosen = _pick(groups, [g for g in names if g in groups], max_panels)
    fig, axes = _grid(len(chosen), 4, 3.2, 3.3)
    r_delta = metrics["model"].get("pearson_delta", {}).get("per_group", {}) or {}
    for ax, g in zip(axes, chosen, strict=False):
        k = names.index(g)
        genes = plots["fold_change_genes"][k].astype(str)
        real, pred = plots["fold_change_real"][k], plots["fold_change_model"][k]
        y = np.arange(len(genes))
        ax.hlines(y, np.minimum(real, pred), np.maximum(real, pred), color="#bbb", lw=1.5)
        ax.scatter(real, y, s=24, color=REAL, label="real", zorder=3)
        ax.scatter(pred, y, s=24, color=MODEL, label="predicted", zorder=3)
        ax.axvline(0, color="#666", lw=0.8)
        ax.set_yticks(y, genes, fontsize=9)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=9)
        r = r_delta.get(g)
        ax.set_title(_title(groups, g) + ("" if r is None else f"\nfold-change r {r:.2f}"),
                     fontsize=10)  # fmt: skip
        ax.set_xlabel("log fold change vs control", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    if chosen:
        axes[0].legend(fontsize=9, loc="lower right")
    return fig


def _limits(*xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis limits fitted to the points (their range and a 6% margin)."""
    both = np.vstack([a for a in xy if len(a)])
    lo, hi = both.min(axis=0), both.max(axis=0)
    pad = 0.06 * np.maximum(hi - lo, 1e-6)
    return lo - pad, hi + pad


def scatter(metrics: dict, plots: dict, max_panels: int = 12) -> Figure:
    """Real (grey) vs generated (red) cells on the first two evaluation PCs, per treatment;
    each panel's axes fitted to its own cells."""
    groups = metrics["groups"]
    chosen = _pick(groups, list(groups), max_panels)
    fig, axes = _grid(len(chosen), 4, 3.2, 3.0)
    rx, rg = plots["scatter_real_xy"], plots["scatter_real_group"].astype(str)
    gx, gg = plots["scatter_model_xy"], plots["scatter_model_group"].astype(str)
    ev = plots.get("pc_variance", np.array([np.nan, np.nan]))
    ed = metrics["model"].get("energy_distance", {}).get("per_group", {})
    for ax, g in zip(axes, chosen, strict=False):
        real, gen = rx[rg == g], gx[gg == g]
        ax.scatter(*real.T, s=8, c="#555555", alpha=0.5, label="real", linewidths=0)
        ax.scatter(*gen.T, s=8, c=MODEL, alpha=0.5, label="generated", linewidths=0)
        if len(real) or len(gen):
            lo, hi = _limits(real, gen)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
        e = ed.get(g)
        ax.set_title(_title(groups, g) + ("" if e is None else f"\nenergy distance {e:.2f}"),
                     fontsize=10)  # fmt: skip
        ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)", fontsize=9)
        ax.set_ylabel(f"PC2 ({ev[1]:.0%})", fontsize=9)
        ax.tick_params(labelsize=8)
    if chosen:
        axes[0].legend(fontsize=9, markerscale=2, loc="best")
    return fig


def r2_histogram(metrics: dict, plots: dict) -> Figure:
    """Per-gene R² of treatment means: the model, the best baseline and the ceiling."""
    fig, ax = plt.subplots(figsize=(9, 4.2), constrained_layout=True)
    best = max(BASELINES, key=lambda b: np.nan_to_num(
        value(metrics, b, "r2_per_gene_median", "all"), nan=-np.inf))  # fmt: skip
    bins = np.linspace(-1, 1, 41)
    for name in ("split_half", best, "model"):
        r2 = np.asarray(plots.get(f"r2_{name}", []), dtype=float)
        r2 = r2[np.isfinite(r2)]
        if len(r2):
            ax.hist(np.clip(r2, -1, 1), bins=bins, alpha=0.55, color=_color(name),
                    label=f"{LABELS[name]} (median {np.median(r2):.2f})")  # fmt: skip
    ax.axvline(0, **CHANCE, label="0: as good as the mean of the groups")
    ax.set_xlabel("per-gene R² of held-out treatment means (clipped to [-1, 1])", fontsize=11)
    ax.set_ylabel("genes", fontsize=11)
    ax.legend(fontsize=10)
    return fig


def _confusion_panel(ax, c: np.ndarray, labels: np.ndarray, title: str) -> None:
    rows = c.sum(axis=1, keepdims=True)
    norm = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    present = rows.ravel() > 0
    ba = np.mean(np.diag(norm)[present]) if present.any() else float("nan")
    ax.set_title(f"{title}: balanced accuracy {ba:.2f}", fontsize=11)
    ax.set_xlabel("predicted treatment", fontsize=10)
    ax.set_ylabel("true treatment", fontsize=10)
    n = len(labels)
    if n <= 40:
        size = 10 if n <= 15 else 9 if n <= 30 else 8
        ax.set_xticks(range(n), labels, rotation=90, fontsize=size)
        ax.set_yticks(range(n), labels, fontsize=size)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, -0.06, f"{n} treatments (too many to label)", transform=ax.transAxes,
                ha="center", va="top", fontsize=9)  # fmt: skip
    return im


def confusion(metrics: dict, plots: dict) -> Figure:
    """Row-normalised confusion matrices of treatment identification (seen treatments), two
    per row so the treatment names stay legible."""
    labels = plots.get("confusion_labels", np.array([])).astype(str)
    side = float(np.clip(0.17 * len(labels) + 2.2, 4.2, 5.9))
    fig, axes = plt.subplots(2, 2, figsize=(2 * side + 1.0, 2 * side), constrained_layout=True)
    im = None
    for ax, name in zip(axes.ravel(), INPUTS, strict=True):
        c = plots.get(f"confusion_{name}")
        if c is None:
            ax.axis("off")
            continue
        im = _confusion_panel(ax, np.asarray(c, dtype=float), labels, LABELS[name])
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.5, label="share of the true treatment's cells")
    return fig


def _chance(ax, v, horizontal: bool = True, **kw) -> None:
    if v is None or not np.isfinite(v):
        return
    (ax.axhline if horizontal else ax.axvline)(v, **(CHANCE | kw))


def identification_bars(metrics: dict, plots: dict | None = None) -> Figure:
    """Balanced accuracy (seen) and retrieval mAP (unseen) per input, with gap closure and the
    chance levels (dotted)."""
    ti = metrics["treatment_identification"]
    fig, axes = plt.subplots(1, 3, figsize=(12.8, 4.4), constrained_layout=True)
    colors = ["#8d99ae", MODEL, "#edae49", CEILING]
    for ax, key, title in ((axes[0], "balanced_accuracy", "seen: balanced accuracy"),
                           (axes[1], "unseen_retrieval_map", "unseen: retrieval mAP")):  # fmt: skip
        vals = [np.nan_to_num(np.nan if ti[key].get(i) is None else ti[key][i]) for i in INPUTS]
        ax.bar(range(4), vals, color=colors)
        ax.set_xticks(range(4), [LABELS[i].replace(" + ", "\n+ ") for i in INPUTS], fontsize=10)
        ax.tick_params(axis="y", labelsize=10)
        if not any(vals):
            ax.text(1.5, 0.5, "not defined\n(needs two or more treatments)", ha="center",
                    fontsize=10, color="#666")  # fmt: skip
        gap = ti.get("gap_closure" if key == "balanced_accuracy" else "unseen_gap_closure")
        ax.set_title(f"{title}; gap closure " + ("n/a" if gap is None else f"{gap:.2f}"),
                     fontsize=11)  # fmt: skip
        _chance(ax, ti.get(f"chance_{key}"), label="chance")
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    if ti.get("chance_balanced_accuracy") is not None:
        axes[0].legend(fontsize=9, loc="upper left")
    _retrieval_panel(axes[2], metrics)
    return fig


def _retrieval_panel(ax, metrics: dict) -> None:
    rm = metrics["retrieval_map"]
    names = [n for n in ("real", *METHODS) if n in rm]
    y = np.arange(len(names))
    for j, subset in enumerate(("seen", "unseen")):
        vals = [np.nan_to_num(np.nan if rm[n][subset] is None else rm[n][subset]) for n in names]
        ax.barh(y + (j - 0.5) * 0.38, vals, height=0.36, hatch="//" if j else None,
                color=[CEILING if n == "real" else _color(n) for n in names],
                edgecolor="white")  # fmt: skip
    chance = metrics.get("retrieval_chance", {})
    _chance(ax, chance.get("seen"), horizontal=False, label="chance (seen)")
    _chance(ax, chance.get("unseen"), horizontal=False, ls="--", label="chance (unseen)")
    ax.set_yticks(y, [LABELS[n] for n in names], fontsize=10)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.tick_params(axis="x", labelsize=10)
    ax.set_title("retrieval mAP per population\n(solid seen, hatched unseen)", fontsize=11)
    if chance:
        ax.legend(fontsize=9, loc="lower right")


def reliability(metrics: dict, plots: dict | None = None) -> Figure:
    """Nominal vs empirical coverage of the summary's intervals (pseudo-bulk, delta)."""
    cov = metrics["uncertainty"]["coverage"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True, sharey=True)
    for ax, target in zip(axes, ("pseudobulk", "delta"), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="nominal")
        for subset, colour in (("seen", MODEL), ("unseen", UNSEEN)):
            c = cov.get(f"{target}/{subset}")
            if not c:
                continue
            lv = [float(k) for k in c]
            emp = [np.nan if v["coverage"] is None else v["coverage"] for v in c.values()]
            ax.plot(lv, emp, marker="o", color=colour, label=f"{subset} treatments")
        ax.set_xlim(0.4, 1)
        ax.set_ylim(0.3, 1.02)
        ax.set_xlabel("nominal coverage", fontsize=11)
        ax.set_title({"pseudobulk": "pseudo-bulk", "delta": "change vs control"}[target],
                     fontsize=11)  # fmt: skip
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("measured coverage", fontsize=11)
    axes[0].legend(fontsize=9)
    auc = metrics["uncertainty"].get("ood_auroc")
    if auc is not None:
        fig.suptitle(f"OOD AUROC (unseen vs seen treatments) {auc:.2f}", fontsize=11)
    return fig


#: plain names of the scores that may rank a group's error (metrics.json keeps the keys)
SCORE_NAMES = {
    "confidence": "confidence (higher: trusted first)",
    "uncertainty": "expected error (uncertainty)",
    "ood_score": "distance to the training data (OOD score)",
    "interval_width": "mean 90% interval width",
}
SCORE_COLORS = {"confidence": MODEL, "uncertainty": CEILING, "ood_score": UNSEEN,
                "interval_width": BASELINE}  # fmt: skip


def oracle_risk(errors) -> np.ndarray:
    """The best possible risk–coverage curve: the groups kept from the smallest error up."""
    e = np.sort(np.asarray(list(errors), dtype=float))
    return np.cumsum(e) / np.arange(1, len(e) + 1)


def risk_coverage(metrics: dict, plots: dict | None = None) -> Figure:
    """Selective prediction: the mean error of the k% most trusted groups vs k, one line per
    score (confidence thick), keeping every group (random order: the mean error) and the
    oracle order (by the error itself); the area under each curve (AURC) in the legend."""
    er = metrics["uncertainty"]["error_ranking"]
    fig, ax = plt.subplots(figsize=(11.5, 4.4), constrained_layout=True)
    curves = er["risk_coverage"]
    dots = "o" if len(er["error"]) <= 30 else None
    for name in sorted(curves, key=lambda n: n == "confidence"):  # confidence drawn last, on top
        c = curves[name]
        main = name == "confidence"
        ax.plot(c["coverage"], c["risk"], color=SCORE_COLORS.get(name, BASELINE),
                lw=2.6 if main else 1.4, alpha=1 if main else 0.85, zorder=3 if main else 2,
                marker=dots, ms=4 if main else 3,
                label=f"{SCORE_NAMES.get(name, name)}: AURC {c['aurc']:.3f}")  # fmt: skip
    first = next(iter(curves.values()))
    oracle = oracle_risk(er["error"].values())
    ax.plot(np.arange(1, len(oracle) + 1) / len(oracle), oracle, color="#222", ls=":", lw=1.6,
            label=f"oracle (kept by the error): AURC {first['oracle_aurc']:.3f}")  # fmt: skip
    ax.axhline(first["random_aurc"], color="#666", ls="--", lw=1.2,
               label=f"random order (the mean error): AURC {first['random_aurc']:.3f}")  # fmt: skip
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("coverage: share of held-out groups kept, most trusted first", fontsize=11)
    ax.set_ylabel("mean error of the kept groups\n(RMSE of the pseudo-bulk, log1p)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9.5, loc="upper left", bbox_to_anchor=(1.01, 1), title="lower is better",
              title_fontsize=9.5, frameon=False)  # fmt: skip
    return fig


# id -> (heading, function(metrics, plots)), in the order of the report
FIGURES = {
    "metric_bars": ("Model vs baselines vs ceiling, with the spread over groups", metric_bars),
    "fold_changes": ("Predicted vs real fold changes of each treatment's top genes", fold_changes),
    "scatter": ("Real vs generated cells per treatment (evaluation PCs)", scatter),
    "r2_histogram": ("Per-gene R² of treatment means", r2_histogram),
    "identification": ("Treatment identification and retrieval", identification_bars),
    "confusion": ("Confusion matrices (seen treatments, held-out replicate)", confusion),
    "reliability": ("Interval coverage: nominal vs measured", reliability),
    "risk_coverage": ("Does the confidence rank the errors? Risk–coverage", risk_coverage),
}


def _has(metrics: dict, plots: dict, fig_id: str) -> bool:
    """Whether the data of an optional figure is there (older metrics files lack some)."""
    if fig_id == "reliability":
        return "uncertainty" in metrics
    if fig_id == "risk_coverage":
        er = metrics.get("uncertainty", {}).get("error_ranking") or {}
        return bool(er.get("risk_coverage")) and bool(er.get("error"))
    if fig_id == "fold_changes":
        return len(plots.get("fold_change_groups", ())) > 0
    return True


def figures_for(metrics: dict, plots: dict | None = None) -> list[str]:
    """The figure ids of :data:`FIGURES` that ``metrics`` (and its plot data) can draw."""
    return [f for f in FIGURES if _has(metrics, plots or {}, f)]


def draw(name: str, metrics: dict, plots: dict) -> Figure:
    """Draw one of :data:`FIGURES` by id."""
    return FIGURES[name][1](metrics, plots)
