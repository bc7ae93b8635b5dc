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


def print_demo(result: dict, console: Console | None = None) -> None:
    """Print the demo's held-out scores: energy distances and treatment identification."""
    console = console or Console()
    print_summary(result["data"], console)
    ed = Table(title="energy distance to real held-out cells (30 PCs; lower is better)")
    for col in ("source", "seen treatments", "unseen treatments"):
        ed.add_column(col, justify="right")
    for name, v in result["scores"]["energy_distance"].items():
        ed.add_row(name, f"{v['seen']:.3f}", f"{v['unseen']:.3f}")
    console.print(ed)
    ti = result["scores"]["treatment_identification"]
    tab = Table(title="treatment identification, held-out replicate (balanced accuracy)")
    for col in ("imaging", "generated", "imaging + generated", "imaging + real", "gap closure"):
        tab.add_column(col, justify="right")
    tab.add_row(*(f"{ti[k]:.3f}" for k in ("imaging", "generated", "imaging_generated",
                                           "imaging_real", "gap_closure")))  # fmt: skip
    console.print(tab)
    s = result["seconds"]
    console.print(f"time: simulate {s['simulate']:.0f} s, train {s['train']:.0f} s, "
                  f"total {s['total']:.0f} s")  # fmt: skip
