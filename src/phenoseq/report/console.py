"""Rich console rendering of the summaries that commands print."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


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
        f"{summary['control']!r} in {summary['n_control_groups']} group(s)"
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
    from ..evaluate.suite import BASELINES, METRICS
    from .plots import LABELS, fmt, method_entry, value

    def _fmt(v) -> str:
        return fmt(v, "-")

    console = console or Console()
    short = {"energy_distance": "ED", "mmd_rbf": "MMD", "pearson_pseudobulk": "r bulk",
             "pearson_delta": "r delta", "deg_top50_overlap": "DEG50", "deg_top50_direction":
             "DEG dir", "r2_per_gene_median": "R2 med"}  # fmt: skip
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


def print_demo(result: dict, console: Console | None = None) -> None:
    """Print the demo: data summary, the evaluation and the time each stage took."""
    console = console or Console()
    print_summary(result["data"], console)
    print_metrics(result["metrics"], console)
    s = result["seconds"]
    feat = f"featurize {s['featurize']:.0f} s, " if s.get("featurize") else ""
    console.print(f"time: simulate {s['simulate']:.0f} s, {feat}train {s['train']:.0f} s, "
                  f"evaluate {s['evaluate']:.0f} s, total {s['total']:.0f} s")  # fmt: skip
