"""``phenoseq report --metrics``: the evaluation report, one self-contained HTML file (PNG plots
embedded as data URIs) from ``metrics.json`` and the plot data ``phenoseq evaluate`` wrote
beside it. Plain metric names with a glossary, the spread over groups, chance lines, a score
table per treatment, provenance as a table; the page fits 1000 px without scrolling sideways."""

from __future__ import annotations

import base64
import html
import io
import json
from importlib.resources import files
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..evaluate.run import plots_path
from ..evaluate.suite import BASELINES, METRICS
from ..io import atomic_path, sha256_file
from .labels import GLOSSARY, LABELS, METRIC_NAMES, NEGATIVE_DISTANCE, fmt, method_entry, value
from .plots import FIGURES, SCORE_NAMES, draw, figures_for

DPI = 100
STYLE = """
td.best { font-weight: 700; background: #fde8ea; }
td small { color: #6e7781; font-size: 11px; white-space: normal; }
figure.plot { margin: 6px 0 4px 0; } figure.plot img { display: block; max-width: 100%;
  height: auto; }
dl.glossary { display: grid; grid-template-columns: minmax(150px, 220px) 1fr; gap: 4px 16px;
  font-size: 13px; margin: 6px 0; } dl.glossary dt { font-weight: 600; } dl.glossary dd
  { margin: 0; } table.scores td, table.scores th { padding: 3px 6px; }
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
    """The figure as a base64 PNG (256-colour palette: a third of the bytes, same look)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    w, h = (fig.get_size_inches() * DPI).round().astype(int)
    plt.close(fig)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    small = io.BytesIO()
    img.quantize(256, method=Image.Quantize.MEDIANCUT).save(small, format="PNG", optimize=True)
    return base64.b64encode(small.getvalue()).decode(), int(w), int(h)


def _e(x) -> str:
    return html.escape(str(x))


def _spread(metrics: dict, name: str, metric: str, subset: str) -> str:
    """'± SD (n groups)' of a method's per-group values, or ''."""
    groups = metrics.get("groups", {})
    per = method_entry(metrics, name).get(metric, {}).get("per_group") or {}
    v = [x for g, x in per.items()
         if x is not None and groups.get(g, {}).get("seen") == (subset == "seen")]  # fmt: skip
    return f"<br><small>± {np.std(v, ddof=1):.3f} ({len(v)})</small>" if len(v) > 1 else ""


def metrics_table(metrics: dict, subset: str) -> str:
    """One row per method, one column per metric (plain names), for seen or unseen groups:
    the mean over groups, the SD over groups below it; the best non-ceiling method in bold."""
    methods = ("model", *BASELINES, "split_half")
    head = "".join(f"<th class=num>{_e(METRIC_NAMES[m])} {'↓' if low else '↑'}</th>"
                   for m, low in METRICS.items())  # fmt: skip
    rows = []
    for name in methods:
        if not method_entry(metrics, name):
            continue
        cells = []
        for metric, low in METRICS.items():
            v = value(metrics, name, metric, subset)
            others = [value(metrics, m, metric, subset) for m in methods if m != "split_half"]
            finite = [o for o in others if np.isfinite(o)]
            best = (name != "split_half" and np.isfinite(v) and finite
                    and v == (min(finite) if low else max(finite)))  # fmt: skip
            cells.append(f"<td class='num{' best' if best else ''}'>{fmt(v)}"
                         f"{_spread(metrics, name, metric, subset)}</td>")  # fmt: skip
        rows.append(f"<tr><td>{_e(LABELS[name])}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>method</th>{head}</tr>{''.join(rows)}</table>"


def glossary() -> str:
    items = "".join(f"<dt>{_e(METRIC_NAMES[k])}</dt><dd>{_e(t)} <code>{k}</code></dd>"
                    for k, t in GLOSSARY.items())  # fmt: skip
    return f"<dl class=glossary>{items}</dl><p class=note>{_e(NEGATIVE_DISTANCE)}</p>"


PER_GROUP = ("energy_distance", "mmd_rbf", "pearson_pseudobulk", "pearson_delta",
             "deg_top50_overlap", "deg_top50_direction")  # fmt: skip


def treatment_table(metrics: dict) -> str:
    """PhenoSeq's scores per held-out group (and the split-half energy distance beside its)."""
    groups = metrics.get("groups", {})
    per = {m: metrics["model"].get(m, {}).get("per_group") or {} for m in PER_GROUP}
    ceil = metrics["ceilings"]["split_half"].get("energy_distance", {}).get("per_group") or {}
    head = ("<tr><th>treatment</th><th>in training</th><th class=num>real cells</th>"
            + "".join(f"<th class=num>{_e(METRIC_NAMES[m])}</th>" for m in PER_GROUP[:1])
            + "<th class=num>Energy distance, split-half ceiling</th>"
            + "".join(f"<th class=num>{_e(METRIC_NAMES[m])}</th>" for m in PER_GROUP[1:])
            + "</tr>")  # fmt: skip
    rows = []
    for g in sorted(groups, key=lambda g: (not groups[g]["seen"], groups[g]["label"], g)):
        info = groups[g]
        kind = "control" if info.get("is_control") else "seen" if info["seen"] else "UNSEEN"
        vals = [fmt(per[m].get(g)) for m in PER_GROUP]
        rows.append(f"<tr><td>{_e(info['label'])}<br><small>{_e(g)}</small></td>"
                    f"<td>{kind}</td><td class=num>{info.get('n_real', '')}</td>"
                    f"<td class=num>{vals[0]}</td><td class=num>{fmt(ceil.get(g))}</td>"
                    + "".join(f"<td class=num>{v}</td>" for v in vals[1:]) + "</tr>")  # fmt: skip
    return f"<table class=scores>{head}{''.join(rows)}</table>"


def _identification_table(metrics: dict) -> str:
    ti = metrics["treatment_identification"]
    rows = "".join(
        f"<tr><td>{LABELS[i]}</td><td class=num>{fmt(ti['balanced_accuracy'].get(i))}</td>"
        f"<td class=num>{fmt(ti['unseen_retrieval_map'].get(i))}</td></tr>"
        for i in ti["balanced_accuracy"]
    )
    rows += (f"<tr><td>chance</td><td class=num>{fmt(ti.get('chance_balanced_accuracy'))}</td>"
             f"<td class=num>{fmt(ti.get('chance_unseen_retrieval_map'))}</td></tr>"
             f"<tr><td>gap closure</td><td class=num>{fmt(ti.get('gap_closure'))}</td>"
             f"<td class=num>{fmt(ti.get('unseen_gap_closure'))}</td></tr>")  # fmt: skip
    return ("<table><tr><th>input</th><th class=num>seen: balanced accuracy</th>"
            f"<th class=num>unseen: retrieval mAP</th></tr>{rows}</table>")  # fmt: skip


def ranking_table(metrics: dict) -> str:
    """Per score: the AUROC for "this group's error is in the top quartile", its AURC and the
    share of the gain from random to oracle order it reaches; the best AUROC in bold."""
    unc = metrics["uncertainty"]
    er = unc["error_ranking"]
    auc, curves = er.get("auroc_top_quartile", {}), er["risk_coverage"]
    best = max((v for v in auc.values() if v is not None and np.isfinite(v)), default=None)
    rows = []
    for name, c in curves.items():
        a = auc.get(name)
        span = c["random_aurc"] - c["oracle_aurc"]
        gain = (c["random_aurc"] - c["aurc"]) / span if span > 1e-12 else None
        bold = " best" if a is not None and a == best else ""
        rows.append(f"<tr><td>{_e(SCORE_NAMES.get(name, name))}</td>"
                    f"<td class='num{bold}'>{fmt(a)}</td><td class=num>{fmt(c['aurc'])}</td>"
                    f"<td class=num>{fmt(gain)}</td></tr>")  # fmt: skip
    ood = [f"{label} {fmt(unc.get(key))}" for key, label in
           (("ood_auroc", "distance to the training data"),
            ("ood_auroc_uncertainty", "expected error"))
           if unc.get(key) is not None]  # fmt: skip
    n = len(er.get("error", {}))
    return (
        "<table class=scores><tr><th>score</th><th class=num>AUROC: top-quartile error ↑</th>"
        "<th class=num>AURC ↓</th><th class=num>gain: 0 random, 1 oracle ↑</th></tr>"
        f"{''.join(rows)}</table><p class=note>How to read the curve: groups are kept from the "
        "most trusted down; a score that ranks the errors keeps the small ones first, so its "
        "curve starts low and rises to the mean error at full coverage (every group kept). "
        "The closer to the oracle, the better; on the random line, the score says nothing "
        "about the error. Error: the RMSE over genes of a group's predicted "
        f"pseudo-bulk against the real one ({n} held-out groups). AUROC: the chance that a group "
        "whose error is in the top quartile is trusted less than one whose error is not (0.5: "
        "no better than a coin; 1: every large error ranked below every small one). AURC: the "
        "area under the risk–coverage curve, the mean error of the kept groups averaged over "
        "all coverages. Unseen vs seen treatments, AUROC: "
        + ("; ".join(ood) if ood else "not measured") + ".</p>"
    )  # fmt: skip


def width_table(metrics: dict) -> str:
    """Per level and seen / unseen treatments: measured coverage beside the mean interval width
    and the width the train-mean baseline's errors would need at that level (pooled over both
    when the metrics have no per-subset widths)."""
    unc = metrics["uncertainty"]
    cov, wid = unc.get("coverage", {}), unc.get("width_vs_train_mean") or {}
    rows = []
    for lv in [k for k in wid if "/" not in k]:
        for subset in ("seen", "unseen"):
            c = (cov.get(f"pseudobulk/{subset}") or {}).get(lv, {}).get("coverage")
            w = wid.get(f"{lv}/{subset}") or wid[lv]
            if c is None and f"{lv}/{subset}" not in wid:
                continue
            wider = w["mean_width"] > w["train_mean_width"]
            verdict = ("<b>wider</b>: a constant would cover with narrower intervals" if wider
                       else "narrower")  # fmt: skip
            rows.append(
                f"<tr><td class=num>{float(lv):.0%}</td><td>{subset}</td>"
                f"<td class=num>{fmt(c)}</td><td class=num>{fmt(w['mean_width'])}</td>"
                f"<td class=num>{fmt(w['train_mean_width'])}</td><td>{verdict}</td></tr>"
            )
    return (
        "<h3>Coverage beside width</h3><table class=scores><tr><th class=num>nominal</th>"
        "<th>treatments</th><th class=num>coverage</th>"
        "<th class=num>mean interval width</th><th class=num>train-mean baseline's width</th>"
        f"<th>intervals vs the baseline's</th></tr>{''.join(rows)}</table><p class=note>"
        "Pseudo-bulk intervals, log1p units. The baseline's width: twice the quantile, at the "
        "level, of the absolute errors of predicting every held-out group of those treatments "
        "by the mean training pseudo-bulk. Coverage bought with intervals wider than that says "
        "no more than the constant prediction would.</p>"
    )  # fmt: skip


#: tables shown under a figure, when the metrics have their data
UNDER = {"risk_coverage": ranking_table,
         "reliability": lambda m: width_table(m) if m["uncertainty"].get("width_vs_train_mean")
         else ""}  # fmt: skip


def _flat(d: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for k, v in d.items():
        key = (k if prefix.strip() == k else f"{prefix}{k}").replace("_", " ")  # not "x x"
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k} ")
        elif isinstance(v, float):
            out.append((key, f"{v:.3g}"))
        else:
            out.append((key, "–" if v is None else str(v)))
    return out


def provenance_table(metrics: dict) -> str:
    rows = _flat(metrics.get("provenance", {})) + _flat(metrics.get("settings", {}))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table class=kv>{body}</table>"


def _intro(metrics: dict) -> str:
    s = metrics.get("settings", {})
    groups = metrics.get("groups", {})
    n_seen = sum(g["seen"] for g in groups.values())
    return (
        f"{len(groups)} held-out groups ({n_seen} of treatments seen in training, "
        f"{len(groups) - n_seen} of unseen ones); {s.get('n_genes', '?')} genes; distances "
        f"between cell distributions in {s.get('space', {}).get('n_pcs', 30)} principal "
        f"components fitted on the training expression; {s.get('subsample', '')}; control "
        f"cells: {s.get('control_cells', 'none')}."
    )


def _figure(fig_id: str, metrics: dict, plots: dict) -> str:
    title = FIGURES[fig_id][0]
    data, w, h = _png(draw(fig_id, metrics, plots))
    under = UNDER[fig_id](metrics) if fig_id in UNDER else ""
    return (f"<section><h2>{_e(title)}</h2><figure class=plot id='{fig_id}'>"
            f"<img alt='{_e(title)}' width={w} height={h} "
            f"src='data:image/png;base64,{data}'></figure>{under}</section>")  # fmt: skip


def render(metrics: dict, plots: dict[str, np.ndarray]) -> str:
    """The report as an HTML string."""
    css = (files("phenoseq.report") / "assets" / "report.css").read_text(encoding="utf-8")
    figs = {f: _figure(f, metrics, plots) for f in figures_for(metrics, plots)}
    parts = [
        "<!doctype html><html lang=en><head><meta charset='utf-8'>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>PhenoSeq evaluation</title><style>{css}{STYLE}</style></head><body><main>",
        "<header><h1>PhenoSeq evaluation report</h1>"
        f"<p class=sub>{_e(_intro(metrics))}</p></header>",
        "<section><h2>Metrics: held-out groups of seen treatments</h2>",
        metrics_table(metrics, "seen"),
        "<h2 style='margin-top:14px'>Metrics: held-out groups of unseen treatments</h2>",
        metrics_table(metrics, "unseen"),
        "<p class=note>Each cell: the mean over held-out groups; below it ± the SD over groups "
        "(the number of groups). "
        "Bold: best method other than the ceiling. ↓ lower is better, ↑ higher is better. "
        "Lookup (the training cells of the same treatment) has no value for unseen "
        "treatments.</p><h3>What the metrics mean</h3>", glossary(), "</section>",
        figs.pop("metric_bars", ""),
        "<section><h2>Scores per treatment (PhenoSeq)</h2>", treatment_table(metrics),
        "</section>", figs.pop("fold_changes", ""),
        "<section><h2>Treatment identification</h2>", _identification_table(metrics),
        "<p class=note>Chance: a random classifier over the training treatments (1 / number "
        "of classes); for retrieval, the expected mAP of a random ranking.</p></section>",
        *figs.values(),
        "<section><h2>Provenance and settings</h2>", provenance_table(metrics), "</section>",
        "</main></body></html>",
    ]  # fmt: skip
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
            for fig_id in figures_for(metrics, plots):
                data, _, _ = _png(draw(fig_id, metrics, plots))
                (tmp / f"{fig_id}.png").write_bytes(base64.b64decode(data))
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(out)
