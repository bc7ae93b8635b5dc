"""The report's figures, drawn with matplotlib from ``metrics.json`` and its plot data.

Each function returns a :class:`matplotlib.figure.Figure` (the Agg backend; nothing is shown).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..evaluate.suite import BASELINES, INPUTS, METRICS  # noqa: E402
from .labels import LABELS, METHODS, value  # noqa: E402

MODEL, BASELINE, CEILING = "#d1495b", "#8d99ae", "#2e86ab"


def _color(name: str) -> str:
    return MODEL if name == "model" else CEILING if name == "split_half" else BASELINE


def metric_bars(metrics: dict, plots: dict | None = None) -> Figure:
    """One panel per metric: every method's seen (solid) and unseen (hatched) value."""
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5), constrained_layout=True)
    y = np.arange(len(METHODS))
    for ax, (metric, lower) in zip(axes.ravel(), METRICS.items(), strict=False):
        for j, subset in enumerate(("seen", "unseen")):
            vals = np.array([value(metrics, m, metric, subset) for m in METHODS])
            ax.barh(y + (j - 0.5) * 0.38, np.nan_to_num(vals), height=0.36,
                    color=[_color(m) for m in METHODS], hatch="//" if j else None,
                    edgecolor="white", alpha=1.0 if j == 0 else 0.75)  # fmt: skip
        ax.set_yticks(y, [LABELS[m] for m in METHODS], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{metric} ({'lower' if lower else 'higher'} is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    ax = axes.ravel()[-1]
    ax.axis("off")
    ax.text(0.0, 0.6, "solid: seen treatments\nhatched: unseen treatments\n"
            "red: PhenoSeq, grey: baselines,\nblue: split-half ceiling\n(missing bar: not defined)",
            fontsize=10, va="center")  # fmt: skip
    return fig


def scatter(metrics: dict, plots: dict, max_panels: int = 12) -> Figure:
    """Real (grey) vs generated (red) cells on the first two evaluation PCs, per treatment."""
    groups = metrics["groups"]
    order = sorted(groups, key=lambda g: (not groups[g]["seen"], groups[g]["label"]))
    seen = [g for g in order if groups[g]["seen"]]
    unseen = [g for g in order if not groups[g]["seen"]]
    n_unseen = min(len(unseen), max_panels // 3 if seen else max_panels)
    chosen = seen[: max_panels - n_unseen] + unseen[:n_unseen]
    cols = 4
    rows = max(1, int(np.ceil(len(chosen) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    rx, rg = plots["scatter_real_xy"], plots["scatter_real_group"].astype(str)
    gx, gg = plots["scatter_model_xy"], plots["scatter_model_group"].astype(str)
    both = np.vstack([rx, gx])
    lo, hi = np.percentile(both, 0.5, axis=0), np.percentile(both, 99.5, axis=0)
    pad = 0.05 * (hi - lo)
    ev = plots.get("pc_variance", np.array([np.nan, np.nan]))
    ed = metrics["model"].get("energy_distance", {}).get("per_group", {})
    for ax in axes.ravel()[len(chosen) :]:
        ax.axis("off")
    for ax, g in zip(axes.ravel(), chosen, strict=False):
        ax.scatter(*rx[rg == g].T, s=6, c="#555555", alpha=0.5, label="real", linewidths=0)
        ax.scatter(*gx[gg == g].T, s=6, c=MODEL, alpha=0.5, label="generated", linewidths=0)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        info = groups[g]
        e = ed.get(g)
        ax.set_title(f"{info['label']} ({'seen' if info['seen'] else 'UNSEEN'})"
                     + (f"  ED {e:.2f}" if e is not None else ""), fontsize=9)  # fmt: skip
        ax.set_xlabel(f"PC1 ({ev[0]:.0%})", fontsize=8)
        ax.set_ylabel(f"PC2 ({ev[1]:.0%})", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.ravel()[0].legend(fontsize=8, markerscale=2, loc="best")
    return fig


def r2_histogram(metrics: dict, plots: dict) -> Figure:
    """Per-gene R² of treatment means: the model, the best baseline and the ceiling."""
    fig, ax = plt.subplots(figsize=(8, 4.2), constrained_layout=True)
    best = max(BASELINES, key=lambda b: np.nan_to_num(
        value(metrics, b, "r2_per_gene_median", "all"), nan=-np.inf))  # fmt: skip
    bins = np.linspace(-1, 1, 41)
    for name in ("split_half", best, "model"):
        r2 = np.asarray(plots.get(f"r2_{name}", []), dtype=float)
        r2 = r2[np.isfinite(r2)]
        if len(r2):
            ax.hist(np.clip(r2, -1, 1), bins=bins, alpha=0.55, color=_color(name),
                    label=f"{LABELS[name]} (median {np.median(r2):.2f})")  # fmt: skip
    ax.set_xlabel("per-gene R² of held-out treatment means (clipped to [-1, 1])")
    ax.set_ylabel("genes")
    ax.legend(fontsize=9)
    return fig


def confusion(metrics: dict, plots: dict) -> Figure:
    """Row-normalised confusion matrices of treatment identification (seen treatments)."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), constrained_layout=True)
    labels = plots.get("confusion_labels", np.array([])).astype(str)
    for ax, name in zip(axes, INPUTS, strict=True):
        c = plots.get(f"confusion_{name}")
        if c is None:
            ax.axis("off")
            continue
        c = np.asarray(c, dtype=float)
        rows = c.sum(axis=1, keepdims=True)
        norm = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
        ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
        present = rows.ravel() > 0
        ba = np.mean(np.diag(norm)[present]) if present.any() else float("nan")
        ax.set_title(f"{LABELS[name]}: balanced acc. {ba:.2f}", fontsize=10)
        ax.set_xlabel("predicted treatment", fontsize=8)
        ax.set_ylabel("true treatment", fontsize=8)
        if len(labels) <= 40:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=5)
            ax.set_yticks(range(len(labels)), labels, fontsize=5)
    return fig


def identification_bars(metrics: dict, plots: dict | None = None) -> Figure:
    """Balanced accuracy (seen) and retrieval mAP (unseen) per input, with gap closure."""
    ti = metrics["treatment_identification"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4), constrained_layout=True)
    colors = ["#8d99ae", MODEL, "#edae49", CEILING]
    for ax, key, title in ((axes[0], "balanced_accuracy", "seen: balanced accuracy"),
                           (axes[1], "unseen_retrieval_map", "unseen: retrieval mAP")):  # fmt: skip
        vals = [np.nan_to_num(np.nan if ti[key].get(i) is None else ti[key][i]) for i in INPUTS]
        ax.bar(range(4), vals, color=colors)
        ax.set_xticks(range(4), [LABELS[i] for i in INPUTS], fontsize=8, rotation=15)
        gap = ti.get("gap_closure" if key == "balanced_accuracy" else "unseen_gap_closure")
        ax.set_title(f"{title}; gap closure " + ("n/a" if gap is None else f"{gap:.2f}"),
                     fontsize=10)  # fmt: skip
        ax.grid(axis="y", alpha=0.3)
    rm = metrics["retrieval_map"]
    names = [n for n in ("real", *METHODS) if n in rm]
    y = np.arange(len(names))
    for j, subset in enumerate(("seen", "unseen")):
        vals = [np.nan_to_num(np.nan if rm[n][subset] is None else rm[n][subset]) for n in names]
        axes[2].barh(y + (j - 0.5) * 0.38, vals, height=0.36, hatch="//" if j else None,
                     color=[CEILING if n == "real" else _color(n) for n in names],
                     edgecolor="white")  # fmt: skip
    axes[2].set_yticks(y, [LABELS[n] for n in names], fontsize=8)
    axes[2].invert_yaxis()
    axes[2].set_title("retrieval mAP per population (solid seen, hatched unseen)",
                      fontsize=10)  # fmt: skip
    return fig


def reliability(metrics: dict, plots: dict | None = None) -> Figure:
    """Nominal vs empirical coverage of the summary's intervals (pseudo-bulk, delta)."""
    cov = metrics["uncertainty"]["coverage"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True, sharey=True)
    for ax, target in zip(axes, ("pseudobulk", "delta"), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="nominal")
        for subset, colour in (("seen", MODEL), ("unseen", "#edae49")):
            c = cov.get(f"{target}/{subset}")
            if not c:
                continue
            lv = [float(k) for k in c]
            emp = [np.nan if v["coverage"] is None else v["coverage"] for v in c.values()]
            ax.plot(lv, emp, marker="o", color=colour, label=f"{subset} treatments")
        ax.set_xlim(0.4, 1)
        ax.set_ylim(0.3, 1.02)
        ax.set_xlabel("nominal coverage")
        ax.set_title({"pseudobulk": "pseudo-bulk", "delta": "delta vs control"}[target],
                     fontsize=10)  # fmt: skip
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("empirical coverage")
    axes[0].legend(fontsize=8)
    auc = metrics["uncertainty"].get("ood_auroc")
    if auc is not None:
        fig.suptitle(f"OOD AUROC (unseen vs seen treatments) {auc:.2f}", fontsize=10)
    return fig


# id -> (heading, function(metrics, plots)), in the order of the report
FIGURES = {
    "metric_bars": ("Model vs baselines vs ceiling", metric_bars),
    "scatter": ("Real vs generated cells per treatment (evaluation PCs)", scatter),
    "r2_histogram": ("Per-gene R² of treatment means", r2_histogram),
    "identification": ("Treatment identification and retrieval", identification_bars),
    "confusion": ("Confusion matrices (seen treatments, held-out replicate)", confusion),
    "reliability": ("Interval coverage: nominal vs empirical", reliability),
}


# figures drawn only when their section is in metrics.json
OPTIONAL = {"reliability": "uncertainty"}


def figures_for(metrics: dict) -> list[str]:
    """The figure ids of :data:`FIGURES` that ``metrics`` has the data for."""
    return [f for f in FIGURES if f not in OPTIONAL or OPTIONAL[f] in metrics]


def draw(name: str, metrics: dict, plots: dict) -> Figure:
    """Draw one of :data:`FIGURES` by id."""
    return FIGURES[name][1](metrics, plots)
