"""Rich console rendering of the summaries that commands print."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ..evaluate.suite import BASELINES, METRICS
from .labels import LABELS, fmt, method_entry, value


def print_summary(summary: dict, console: Console | None = None) -> None:
    """Print the :func:`phenoseq.data.summarize` dict as two small tables."""
    console = console or Console()
    m, e = summary["morphology"], summary["expression"]
    console.print(
        f"morphology: {m['n_rows']} rows x {m['n_features']} features | "
        f"expression: {e['n_rows']} rows x {e['n_genes']} genes ({e['kind']})"
    )
    console.print(
        f"pairing on {summary['pair_key']} (label '{summary['label_key']}'): "
        f"{summary['n_groups_shared']} shared groups, {summary['n_labels']} labels; "
        f"{summary['n_groups_morphology_only']} morphology-only, "
        f"{summary['n_groups_expression_only']} expression-only; control "
        f"{summary['control']!r} in {summary['n_control_groups']} group(s)",
        soft_wrap=True,
    )
    cells = Table(title="cells per shared group")
    for col in ("modality", "min", "median", "max"):
        cells.add_column(col, justify="right")
    for side, s in summary["cells_per_group"].items():
        cells.add_row(side, str(s["min"]), f"{s['median']:g}", str(s["max"]))
    console.print(cells)
    roles = Table(title=f"split: {summary['split']}")
    for col in ("role", "groups", "labels"):
        roles.add_column(col, justify="right")
    for role, r in summary["roles"].items():
        roles.add_row(role, str(r["groups"]), str(r["labels"]))
    console.print(roles)


def print_metrics(metrics: dict, console: Console | None = None) -> None:
    """Print an evaluation: every method's metrics (seen / unseen) and treatment identification."""

    def _fmt(v) -> str:
        return fmt(v, "-")

    console = console or Console()
    short = {
        "energy_distance": "ED", "e_distance": "E-dist", "mmd_rbf": "MMD",
        "pearson_pseudobulk": "r bulk", "pearson_delta": "r delta", "deg_top50_overlap": "DEG50",
        "deg_top50_direction": "DEG dir", "r2_per_gene_median": "R2 med",
    }  # fmt: skip
    for subset in ("seen", "unseen"):
        tab = Table(title=f"held-out groups of {subset} treatments "
                    "(ED, MMD: lower is better; others higher)")  # fmt: skip
        tab.add_column("method")
        for m in METRICS:
            tab.add_column(short[m], justify="right")
        for name in ("model", *BASELINES, "split_half"):
            if method_entry(metrics, name):
                tab.add_row(LABELS[name], *(_fmt(value(metrics, name, m, subset)) for m in METRICS))
        console.print(tab)
    ti = metrics["treatment_identification"]
    ident = Table(title="treatment identification, held-out replicate")
    for col in ("", "imaging", "generated", "imaging + generated", "imaging + real", "gap closure"):
        ident.add_column(col, justify="right")
    for key, gap, name in (
        ("balanced_accuracy", "gap_closure", "seen: balanced accuracy"),
        ("unseen_retrieval_map", "unseen_gap_closure", "unseen: mAP"),
    ):
        row = [_fmt(ti[key].get(i)) for i in ("imaging", "generated", "imaging_generated",
                                               "imaging_real")]  # fmt: skip
        ident.add_row(name, *row, _fmt(ti.get(gap)))
    console.print(ident)


def print_demo(result: dict, out, console: Console | None = None) -> None:
    """Print the demo: data summary, the evaluation and the time each stage took."""
    console = console or Console()
    print_summary(result["data"], console)
    print_evaluation(result["metrics"], Path(out) / "metrics.json", console)
    s = result["seconds"]
    feat = f"featurize {s['featurize']:.0f} s, " if s.get("featurize", 0) > 1 else ""
    console.print(f"time: simulate {s['simulate']:.0f} s, {feat}train {s['train']:.0f} s, "
                  f"calibrate + generate + summarise {s['generate']:.0f} s, evaluate + reports "
                  f"{s['evaluate']:.0f} s, total {s['total']:.0f} s")  # fmt: skip
    console.print(f"outputs in {out}/ (simulated/, model/ with calibration.json, "
                  "heldout_*.h5ad, generated.h5ad, prediction_summary.h5ad, metrics.json, "
                  "summary.json)")  # fmt: skip
    console.print(f"evaluation report: {result['report']}")
    console.print(
        f"prediction report (the test wells as if never sequenced): {result['prediction_report']}"
    )


def print_evaluation(metrics: dict, out, console: Console) -> None:
    """``phenoseq evaluate``'s output: the metrics, the interval coverage, where it wrote."""
    print_metrics(metrics, console)
    unc = metrics.get("uncertainty")
    if unc:
        for key, cov in unc["coverage"].items():
            cells = ", ".join(f"{lv}: {c['coverage']:.2f}" for lv, c in cov.items()
                              if c["coverage"] is not None)  # fmt: skip
            console.print(f"interval coverage {key}: {cells}")
        if unc.get("ood_auroc") is not None:
            console.print(f"OOD AUROC (unseen vs seen treatments): {unc['ood_auroc']:.3f}")
        ranks = unc.get("error_ranking", {}).get("auroc_top_quartile", {})
        if ranks:
            cells = ", ".join(f"{k} {v:.2f}" for k, v in ranks.items() if v == v)
            console.print(f"AUROC for a top-quartile error, by score: {cells}")
    plots = Path(out).with_name(f"{Path(out).stem}.plots.npz").name
    console.print(f"metrics written to {out} (plot data: {plots})")


def print_featurized(adata, out, console: Console) -> None:
    info = adata.uns["phenoseq"]["featurize"]
    console.print(f"{adata.n_obs} cells x {adata.n_vars} features from {info['n_fields_done']} of "
                  f"{info['n_fields']} fields written to {out}")  # fmt: skip
    for name, err in info["failed_fields"].items():
        console.print(f"[yellow]skipped field {name}:[/] {err}", stderr=True)


def print_embedded(adata, out, console: Console) -> None:
    info = adata.uns["phenoseq"]
    if "X_external" in adata.obsm:
        console.print(
            f"{adata.n_obs} cells x {adata.obsm['X_external'].shape[1]} external "
            f"dimensions (obsm X_external, X_features_external) written to {out}"
        )
        return
    hist = info["encoder"].get("history")
    if hist:
        held = hist["heldout_accuracy"]
        console.print(f"encoder: {hist['epochs']} epochs in {hist['seconds']:.0f} s, treatment "
                      f"accuracy train {hist['train_accuracy']:.2f}"
                      + (f", held-out rows {held:.2f}" if held is not None else "")
                      + f" ({hist['n_classes']} treatments)")  # fmt: skip
    console.print(f"{adata.n_obs} cells embedded (obsm X_cnn, X_features_cnn) written to {out}")


def print_generated(result, threshold: float, console: Console, err: Console) -> None:
    """``phenoseq generate``'s output: what it wrote, and the groups it flags."""
    console.print(f"{result.n_cells} cells x {result.n_genes} genes for {result.n_groups} "
                  f"groups written to {result.path}", soft_wrap=True)  # fmt: skip
    if result.summary is None:
        return
    console.print(f"per-group summary ({result.summary.n_obs} groups) written to "
                  f"{result.summary_path}")  # fmt: skip
    flagged = result.flagged
    if flagged:
        err.print(f"[yellow]warning:[/] {len(flagged)} group(s) unlike the training data "
                  f"(confidence < {threshold}): {', '.join(flagged[:10])}"
                  + (" ..." if len(flagged) > 10 else ""))  # fmt: skip


def print_calibration(cal, model_dir, console: Console) -> None:
    """``phenoseq calibrate``'s output: the groups and the interval multipliers."""

    def multiplier(k: int) -> str:
        per_gene = cal.q_bulk_gene[k] if cal.q_bulk_gene else None
        if per_gene is None:
            return f"{cal.levels[k]:g}: {cal.q_bulk[k]:.2f} (pooled)"
        return f"{cal.levels[k]:g}: {np.median(per_gene):.2f} (median of per-gene)"

    n_seen = cal.scores_summary.get("n_seen_groups", cal.n_groups)
    qs = ", ".join(multiplier(k) for k in range(len(cal.levels)))
    console.print(f"calibrated on {n_seen} groups of seen treatments ({cal.n_groups} in all); "
                  f"interval multipliers {qs}; written to {Path(model_dir) / 'calibration.json'}",
                  soft_wrap=True)  # fmt: skip


def print_suggestions(table, out, console: Console, err: Console) -> None:
    """``phenoseq suggest``'s output: the first ten of the ranked list."""
    if "confidence" in table and table["confidence"].isna().all():
        err.print("[yellow]warning:[/] uncalibrated summary: ranked by interval width only "
                  "(run `phenoseq calibrate` before `generate --summary`)")  # fmt: skip
    for _, r in table.head(10).iterrows():
        console.print(f"{r['rank']:>3}  {r['group']}  confidence {r['confidence']:.2f}  "
                      f"width {r['mean_width']:.2f}  {r['reason']}")  # fmt: skip
    console.print(f"{len(table)} group(s) to sequence written to {out}")
