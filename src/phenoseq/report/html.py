"""``phenoseq report``: one self-contained HTML file (PNG plots embedded as data URIs) from
``metrics.json`` and the plot data ``phenoseq evaluate`` wrote beside it."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..evaluate.run import plots_path
from ..evaluate.suite import BASELINES, METRICS
from ..io import atomic_path, sha256_file
from .labels import LABELS, fmt, method_entry, value
from .plots import FIGURES, draw, figures_for

DPI = 80
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1320px; color: #222; }
h1 { font-size: 24px; } h2 { font-size: 18px; margin-top: 32px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.best { font-weight: bold; background: #fde8ea; }
figure.plot { margin: 8px 0 24px 0; } figure.plot img { display: block; }
.note { color: #555; font-size: 13px; max-width: 1000px; }
"""


def read_metrics(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``metrics.json`` and its plot arrays (checked against the recorded sha256)."""
    path = Path(path)
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError("does not exist.", "run `phenoseq evaluate --out` first", path) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"is not valid JSON ({exc}).", "re-run `phenoseq evaluate`", path) from exc
    if not isinstance(metrics, dict) or not {"model", "baselines", "ceilings"} <= set(metrics):
        raise InputError("is not a metrics.json written by `phenoseq evaluate`.",
                         "pass the --out file of `phenoseq evaluate`", path)  # fmt: skip
    npz = plots_path(path)
    if not npz.is_file():
        fix = f"keep {npz.name} beside it (written by `phenoseq evaluate`)"
        raise InputError("its plot data is missing.", fix, path)
    want = metrics.get("plot_data", {}).get("sha256")
    if want and sha256_file(npz) != want:
        raise InputError("does not match the metrics (sha256 differs).",
                         "re-run `phenoseq evaluate` to write both together", npz)  # fmt: skip
    try:
        with np.load(npz, allow_pickle=False) as z:
            plots = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot be read ({exc}).", "re-run `phenoseq evaluate`", npz) from exc
    return metrics, plots


def _png(fig) -> tuple[str, int, int]:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    w, h = (fig.get_size_inches() * DPI).round().astype(int)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode(), int(w), int(h)


def metrics_table(metrics: dict) -> str:
    """The HTML table: one row per method, seen / unseen value of every metric."""
    methods = ("model", *BASELINES, "split_half")
    head = "".join(f"<th colspan=2>{html.escape(m)}<br>({'↓' if low else '↑'})</th>"
                   for m, low in METRICS.items())  # fmt: skip
    sub = "".join("<th>seen</th><th>unseen</th>" for _ in METRICS)
    rows = []
    for name in methods:
        if not method_entry(metrics, name):
            continue
        cells = []
        for metric, low in METRICS.items():
            for subset in ("seen", "unseen"):
                v = value(metrics, name, metric, subset)
                others = [value(metrics, m, metric, subset) for m in methods if m != "split_half"]
                finite = [o for o in others if np.isfinite(o)]
                best = (name != "split_half" and np.isfinite(v) and finite
                        and v == (min(finite) if low else max(finite)))  # fmt: skip
                cells.append(f"<td{' class=best' if best else ''}>{fmt(v)}</td>")
        rows.append(f"<tr><td>{html.escape(LABELS[name])}</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th rowspan=2>method</th>{head}</tr><tr>{sub}</tr>"
            f"{''.join(rows)}</table>")  # fmt: skip


def _identification_table(metrics: dict) -> str:
    ti = metrics["treatment_identification"]
    rows = "".join(
        f"<tr><td>{LABELS[i]}</td><td>{fmt(ti['balanced_accuracy'].get(i))}</td>"
        f"<td>{fmt(ti['unseen_retrieval_map'].get(i))}</td></tr>"
        for i in ti["balanced_accuracy"]
    )
    rows += (f"<tr><td>gap closure</td><td>{fmt(ti.get('gap_closure'))}</td>"
             f"<td>{fmt(ti.get('unseen_gap_closure'))}</td></tr>")  # fmt: skip
    return ("<table><tr><th>input</th><th>seen: balanced accuracy</th>"
            f"<th>unseen: retrieval mAP</th></tr>{rows}</table>")  # fmt: skip


def render(metrics: dict, plots: dict[str, np.ndarray]) -> str:
    """The report as an HTML string."""
    s = metrics.get("settings", {})
    groups = metrics.get("groups", {})
    n_seen = sum(g["seen"] for g in groups.values())
    intro = (
        f"{len(groups)} held-out groups ({n_seen} of seen treatments, {len(groups) - n_seen} "
        f"unseen); {s.get('n_genes', '?')} genes; distribution metrics in "
        f"{s.get('space', {}).get('n_pcs', 30)} PCs fitted on the training expression; "
        f"{s.get('subsample', '')}; control cells: {s.get('control_cells', 'none')}."
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>PhenoSeq evaluation</title>",
        f"<style>{STYLE}</style></head><body><h1>PhenoSeq evaluation report</h1>",
        f"<p class=note>{html.escape(intro)} Bold: best non-ceiling method. ↓ lower is better, "
        "↑ higher is better. Lookup has no value for unseen treatments.</p>",
        "<h2>Metrics</h2>", metrics_table(metrics),
        "<h2>Treatment identification</h2>", _identification_table(metrics),
    ]  # fmt: skip
    for fig_id in figures_for(metrics):
        title = FIGURES[fig_id][0]
        data, w, h = _png(draw(fig_id, metrics, plots))
        parts.append(
            f"<h2>{html.escape(title)}</h2><figure class=plot id='{fig_id}'>"
            f"<img alt='{html.escape(title)}' width={w} height={h} "
            f"src='data:image/png;base64,{data}'></figure>"
        )
    prov = html.escape(json.dumps(metrics.get("provenance", {}), default=str))
    parts.append(f"<h2>Provenance</h2><p class=note><code>{prov}</code></p></body></html>")
    return "\n".join(parts)


def write_report(
    metrics_path: str | Path, out: str | Path, figures: str | Path | None = None
) -> Path:
    """Read ``metrics.json`` (and its plot data) and write the self-contained HTML report.

    ``figures``: also write every plot as ``<id>.png`` into this folder (e.g. for a paper).
    """
    metrics, plots = read_metrics(metrics_path)
    text = render(metrics, plots)
    if figures is not None:
        with atomic_path(figures, is_dir=True) as tmp:
            for fig_id in figures_for(metrics):
                data, _, _ = _png(draw(fig_id, metrics, plots))
                (tmp / f"{fig_id}.png").write_bytes(base64.b64decode(data))
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(out)
