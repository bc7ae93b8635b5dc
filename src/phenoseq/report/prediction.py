"""The prediction report: what PhenoSeq predicts for imaged, never-sequenced wells.

:func:`write_prediction_report` reads the per-group summary of ``phenoseq generate --summary``
(and, optionally, the generated cells' provenance and an evaluation's ``metrics.json``) and
writes one self-contained HTML file: a summary card, a plate map, the wells to sequence next,
each treatment's top up- and down-regulated genes by name with intervals, a clustered heatmap,
a forest plot and an effect-vs-confidence view per treatment. Only summaries and the top genes
are embedded (the full predictions stay in the ``.h5ad``); the views are drawn by a few tens of
KB of the report's own JavaScript, with no chart library and no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering

from .. import _keys as K
from ..data.morphology import read_h5ad
from ..errors import InputError
from ..io import atomic_path, sha256_file
from ..uncertainty.suggest import suggest
from .prediction_html import render_page

try:
    from anndata.io import read_elem
except ImportError:  # anndata < 0.11
    from anndata.experimental import read_elem

#: var columns that hold gene symbols, in order of preference (else var_names)
SYMBOL_COLUMNS = ("gene_symbols", "gene_symbol", "symbol", "symbols", "feature_name",
                  "gene_name", "gene_names", "gene")  # fmt: skip
#: obs columns that name a group's treatment, in order of preference (else the group id)
LABEL_COLUMNS = (K.TREATMENT, "treatment", "Metadata_Treatment", "perturbation",
                 "Metadata_pert_iname", "Metadata_broad_sample", K.COMPOUND, "Metadata_compound",
                 "condition")  # fmt: skip
#: obs columns shown when hovering a well (when present)
DETAIL_COLUMNS = (K.PLATE, K.WELL, K.COMPOUND, K.DOSE, "Metadata_dose", K.REPLICATE,
                  "Metadata_broad_sample", "control_group", "ood_score")  # fmt: skip
TOP_N = 10  # up and down genes per treatment
RATIO_N = 20  # most confident changes per treatment (effect-vs-confidence view)
HEAT_GENES = 40  # heatmap columns (and the plate map's gene picker)
HEAT_ROWS = 80  # heatmap rows (treatments with the largest changes)
WELL = re.compile(r"^\s*([A-Pa-p])\s*0*(\d{1,2})\s*$")


@dataclass
class Inputs:
    """What the report reads: the summary, its file (if any), and the optional extras."""

    summary: ad.AnnData
    path: Path | None = None
    generated: dict | None = None
    generated_name: str | None = None
    metrics: dict | None = None


def read_summary(summary: ad.AnnData | str | Path) -> tuple[ad.AnnData, Path | None]:
    """The ``generate --summary`` AnnData, checked: levels in ``uns``, the ``mean`` layer."""
    path = None
    if not isinstance(summary, ad.AnnData):
        path = Path(summary)
        if not path.is_file():
            raise InputError("does not exist.", "pass the --summary file of `phenoseq generate`",
                             path)  # fmt: skip
        summary = read_h5ad(path)
    info = summary.uns.get(K.UNS, {})
    if K.GROUP in summary.obs or "levels" not in info or "mean" not in summary.layers:
        cells = K.GROUP in summary.obs
        raise InputError(
            "is generated cells, not a per-group summary." if cells
            else "is not a `phenoseq generate --summary` output (no levels or mean layer).",
            "pass the file written by `phenoseq generate --summary S.h5ad` as --summary"
            + (" (the cells file goes to --generated)" if cells else ""), path or "summary",
        )  # fmt: skip
    if summary.n_obs == 0:
        raise InputError("has no groups.", "summarise at least one group", path or "summary")
    return summary, path


def read_provenance(generated: ad.AnnData | str | Path) -> tuple[dict, str]:
    """``uns['phenoseq']`` of the generated cells (only that is read from a file)."""
    if isinstance(generated, ad.AnnData):
        return dict(generated.uns.get(K.UNS, {})), "generated cells"
    path = Path(generated)
    if not path.is_file():
        raise InputError("does not exist.", "pass the --out file of `phenoseq generate`", path)
    try:
        with h5py.File(path, "r") as f:
            uns = read_elem(f["uns"]) if "uns" in f else {}
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot be read as .h5ad ({exc}).",
                         "pass the --out file of `phenoseq generate`", path) from exc  # fmt: skip
    info = uns.get(K.UNS, {})
    if "sampler" not in info:
        raise InputError("has no generation provenance (uns['phenoseq'].sampler).",
                         "pass the --out file of `phenoseq generate`", path)  # fmt: skip
    return dict(info), path.name


def gene_names(var: pd.DataFrame) -> np.ndarray:
    """Gene symbols from a symbol column of ``var`` when it has one, else ``var_names``."""
    names = var.index.astype(str).to_numpy().copy()
    lower = {str(c).lower(): c for c in var.columns}
    for want in SYMBOL_COLUMNS:
        if want in lower:
            col = var[lower[want]]
            ok = col.notna().to_numpy() & (col.astype(str).str.strip() != "").to_numpy()
            names[ok] = col.astype(str).to_numpy()[ok]
            break
    return names


def parse_well(text) -> tuple[int, int] | None:
    """``"B07"`` / ``"b7"`` -> (row 1, column 6); None when it is not a well name."""
    m = WELL.match(str(text))
    if not m or not 1 <= int(m.group(2)) <= 24:
        return None
    return ord(m.group(1).upper()) - ord("A"), int(m.group(2)) - 1


def plate_layout(positions: list[tuple[int, int] | None]) -> int | None:
    """96 when every well fits A-H x 1-12, else 384; None without well positions."""
    known = [p for p in positions if p is not None]
    if not known:
        return None
    return 96 if all(r < 8 and c < 12 for r, c in known) else 384


def _label_column(obs: pd.DataFrame) -> str | None:
    return next((c for c in LABEL_COLUMNS if c in obs), None)


def _r(x, nd: int = 3):
    """Rounded JSON-ready numbers (NaN -> None), for arrays too."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 0:
        return round(float(a), nd) if np.isfinite(a) else None
    out = np.round(a, nd).astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def _text(v) -> str:
    return f"{v:.3g}" if isinstance(v, float | np.floating) else str(v)


def _wells(s: ad.AnnData) -> list[dict]:
    """One entry per group: position, treatment, control, confidence and flag, detail."""
    obs = s.obs
    label = _label_column(obs)
    ctrl = obs.get("control_group", pd.Series("", index=obs.index)).astype(str)
    out = []
    for i, g in enumerate(s.obs_names):
        row = obs.iloc[i]
        pos = parse_well(row[K.WELL]) if K.WELL in obs else None
        out.append({
            "g": str(g), "t": str(row[label]) if label else str(g),
            "p": str(row[K.PLATE]) if K.PLATE in obs else "",
            "w": str(row[K.WELL]) if K.WELL in obs else "", "pos": pos,
            "ctrl": ctrl.iloc[i] == str(g), "hasctrl": ctrl.iloc[i] not in ("", "nan"),
            "conf": _r(row["confidence"]) if "confidence" in obs else None,
            "flag": bool(row["ood_flag"]) if "ood_flag" in obs else False,
            "new": _is_new(row), "unc": _r(row["uncertainty"]) if "uncertainty" in obs else None,
            "detail": [[c, _text(row[c])] for c in DETAIL_COLUMNS
                       if c in obs and c not in (K.PLATE, K.WELL)],
        })  # fmt: skip
    return out


def _is_new(row: pd.Series) -> bool:
    """A well of a treatment never trained on (``seen_treatment``; older summaries: flagged)."""
    if "seen_treatment" in row.index:
        return not bool(row["seen_treatment"])
    return bool(row["ood_flag"]) if "ood_flag" in row.index else False


def _level(s: ad.AnnData) -> float:
    levels = [float(v) for v in np.ravel(s.uns[K.UNS]["levels"])]
    return 0.9 if 0.9 in levels else max(levels)


def _delta(s: ad.AnnData, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """delta mean, lower, upper (groups x genes) at ``level``; None without deltas."""
    keys = ("delta_mean", f"delta_lower_{level:g}", f"delta_upper_{level:g}")
    if not all(k in s.layers for k in keys):
        return None
    return tuple(np.asarray(s.layers[k], dtype=float) for k in keys)


def _tops(m: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[list[int], list[int], list]:
    """One group's top up / down genes (by predicted change) and its embedded gene set
    (those plus the most confident changes, |effect| / interval half-width)."""
    order = np.argsort(-m, kind="stable")
    up = [int(j) for j in order[:TOP_N] if m[j] > 0]
    down = [int(j) for j in order[::-1][:TOP_N] if m[j] < 0]
    ratio = np.abs(m) / np.maximum((hi - lo) / 2, 1e-12)
    sure = np.argsort(-ratio, kind="stable")[:RATIO_N]
    return up, down, sorted(set(up) | set(down) | {int(j) for j in sure})


def _heat_genes(d: tuple, rows: np.ndarray) -> np.ndarray:
    """Genes of the heatmap: each treatment's three strongest up and down changes, the
    largest over treatments first (called changes count before uncertain ones)."""
    m, lo, hi = (x[rows] for x in d)
    called = (lo > 0) | (hi < 0)
    cand = set()
    for k in range(len(m)):
        order = np.argsort(m[k], kind="stable")
        cand |= {int(j) for j in (*order[:3], *order[-3:])}
    cand = np.array(sorted(cand))
    score = np.max(np.abs(m[:, cand]) * (1 + called[:, cand]), axis=0)
    return cand[np.argsort(-score, kind="stable")[:HEAT_GENES]]


def _cluster_order(x: np.ndarray) -> list[int]:
    """Leaf order of average-linkage clustering (Euclidean), optimal leaf ordering."""
    if len(x) < 3:
        return list(range(len(x)))
    z = linkage(x, "average", metric="euclidean")
    return leaves_list(optimal_leaf_ordering(z, x)).tolist()


def _gene_views(s: ad.AnnData, level: float, extra_genes: list[str]) -> dict:
    """Per treated group the top genes; the clustered heatmap; the plate map's gene layer."""
    d = _delta(s, level)
    names = gene_names(s.var)
    if d is None:
        return {"genes": [], "tops": {}, "heat": None, "pick": None, "symbols": False}
    m, lo, hi = d
    ctrl = s.obs.get("control_group", pd.Series("", index=s.obs.index)).astype(str)
    treated = np.isfinite(m).all(axis=1) & (ctrl.to_numpy() != s.obs_names.astype(str))
    rows = np.flatnonzero(treated)
    if not len(rows):
        return {"genes": [], "tops": {}, "heat": None, "pick": None, "symbols": False}
    heat = _heat_genes(d, rows)
    wanted = [j for j in np.flatnonzero(np.isin(names, extra_genes) | np.isin(
        s.var_names, extra_genes)) if j not in heat]  # fmt: skip
    pick = np.concatenate([heat, np.asarray(wanted, dtype=int)])
    used: dict[int, int] = {int(j): k for k, j in enumerate(pick)}
    tops = {}
    for i in rows:
        up, down, keep = _tops(m[i], lo[i], hi[i])
        for j in keep:
            used.setdefault(j, len(used))
        tops[int(i)] = {"up": [used[j] for j in up], "down": [used[j] for j in down],
                        "genes": [used[j] for j in keep], "m": _r(m[i, keep], 2),
                        "lo": _r(lo[i, keep], 2), "hi": _r(hi[i, keep], 2)}  # fmt: skip
    strength = np.abs(m[np.ix_(rows, heat)]).max(axis=1)
    shown = rows[np.sort(np.argsort(-strength, kind="stable")[:HEAT_ROWS])]
    mat = np.nan_to_num(m[np.ix_(shown, heat)])
    heat_view = {"rows": [int(shown[k]) for k in _cluster_order(mat)],
                 "cols": [used[int(heat[k])] for k in _cluster_order(mat.T)],
                 "n_rows": len(rows)}  # fmt: skip
    genes = sorted(used, key=used.get)
    return {
        "genes": [str(names[j]) for j in genes],
        "tops": tops, "heat": heat_view,
        "pick": {"cols": [used[int(j)] for j in pick], "m": _r(m[:, pick], 2),
                 "lo": _r(lo[:, pick], 2), "hi": _r(hi[:, pick], 2)},
        "symbols": bool(np.any(names != s.var_names.astype(str).to_numpy())),
    }  # fmt: skip


def _sig(v, digits: int = 4):
    """A number rounded to ``digits`` significant digits (small priorities keep their order)."""
    v = float(v)
    return float(f"{v:.{digits}g}") if np.isfinite(v) else None


def _suggestions(s: ad.AnnData, budget: int) -> list[dict]:
    table = suggest(s, min(budget, s.n_obs))
    index = {g: i for i, g in enumerate(s.obs_names.astype(str))}
    informed = table["wells_informed"] if "wells_informed" in table else pd.Series(1, table.index)
    return [{"rank": int(r["rank"]), "i": index[str(r["group"])],
             "priority": _sig(r["priority"]), "conf": _r(r["confidence"]),
             "width": _r(r["mean_width"]), "informed": int(informed[k]),
             "reason": str(r["reason"])}
            for k, r in table.iterrows()]  # fmt: skip


def _provenance(inp: Inputs) -> list[list[str]]:
    """(what, value) rows: the model and sampler, the summary's settings, the files."""
    info = inp.summary.uns[K.UNS]
    gen = inp.generated or {}
    sample = dict(info.get("settings", {}).get("sample", {}))
    rows = [
        ("model", gen.get("model", "not recorded (pass --generated)")),
        ("PhenoSeq version", gen.get("version", "not recorded (pass --generated)")),
        ("sampler", f"{gen.get('sampler', sample.get('sampler'))}, "
                    f"{gen.get('n_steps', sample.get('n_steps'))} steps, guidance "
                    f"{gen.get('guidance', sample.get('guidance'))}, seed "
                    f"{gen.get('seed', sample.get('seed'))}"),
        ("draws per group", f"{info.get('n_draws')} pseudo-bulks of "
                            f"{info.get('n_cells_per_draw')} generated cells"),
        ("intervals", f"{info.get('intervals')}; levels "
                      + ", ".join(f"{float(v):g}" for v in np.ravel(info['levels']))),
        ("OOD threshold", f"confidence < {info.get('ood_threshold')}"),
    ]  # fmt: skip
    if inp.path is not None:
        rows.append(("summary file", f"{inp.path.name} (sha256 {sha256_file(inp.path)[:12]})"))
    if inp.generated_name:
        rows.append(("generated cells", inp.generated_name))
    return [[k, str(v)] for k, v in rows]


def _skill(metrics: dict | None) -> dict | None:
    """Fold-change correlation on scale 0 = training mean, 1 = split-half ceiling, seen and
    unseen treatments (from an evaluation's metrics.json)."""
    if not metrics:
        return None

    def get(entry: dict, subset: str):
        v = entry.get("pearson_delta", {}).get(subset, {}).get("value")
        return None if v is None else float(v)

    out = {}
    for subset in ("seen", "unseen"):
        m = get(metrics.get("model", {}), subset)
        base = get(metrics.get("baselines", {}).get("train_mean", {}), subset)
        top = get(metrics.get("ceilings", {}).get("split_half", {}), subset)
        ok = None not in (m, base, top) and top - base > 1e-9
        out[subset] = round((m - base) / (top - base), 3) if ok else None
    return out if any(v is not None for v in out.values()) else None


def _coverage(metrics: dict | None) -> dict | None:
    unc = (metrics or {}).get("uncertainty")
    return {"coverage": unc["coverage"], "auroc": unc.get("ood_auroc")} if unc else None


def _threshold_coverage(s: ad.AnnData, evaluated: list[str]) -> tuple[float, str] | None:
    """The share of groups at or above the confidence threshold: of the evaluated groups when
    this summary holds them (the curve's own groups), else of this summary's wells."""
    if "confidence" not in s.obs:
        return None
    t = float(s.uns[K.UNS].get("ood_threshold", 0.05))
    conf = s.obs["confidence"].astype(float)
    have = [g for g in evaluated if g in conf.index]
    if len(have) == len(evaluated) and have:
        return float((conf[have] >= t).mean()), "evaluated"
    return float((conf >= t).mean()), "plate"


def _risk(metrics: dict | None, s: ad.AnnData) -> dict | None:
    """The evaluation's risk–coverage curves (``evaluate --summary``), the oracle curve, and
    where the summary's confidence threshold falls on them; None without them."""
    er = ((metrics or {}).get("uncertainty") or {}).get("error_ranking") or {}
    curves, error = er.get("risk_coverage") or {}, er.get("error") or {}
    if not curves or not error:
        return None
    e = np.sort(np.asarray(list(error.values()), dtype=float))
    first = next(iter(curves.values()))
    mark = _threshold_coverage(s, list(error))
    auc = {k: v for k, v in (er.get("auroc_top_quartile") or {}).items() if v is not None}
    return {
        "curves": {k: {"x": _r(c["coverage"], 4), "y": _r(c["risk"], 4), "aurc": _sig(c["aurc"]),
                       "auroc": _r(auc.get(k, np.nan))} for k, c in curves.items()},
        "oracle": _r(np.cumsum(e) / np.arange(1, len(e) + 1), 4),
        "random": _sig(first["random_aurc"]), "oracle_aurc": _sig(first["oracle_aurc"]),
        "n": len(e), "threshold": float(s.uns[K.UNS].get("ood_threshold", 0.05)),
        "mark": None if mark is None else {"x": round(mark[0], 4), "of": mark[1]},
    }  # fmt: skip


def _guarantee(info: dict) -> list[list[str]]:
    """(levels, what their intervals promise) from the calibration, levels with one text
    together."""
    by_text: dict[str, list[str]] = {}
    for lv, text in dict(info.get("guarantee") or {}).items():
        by_text.setdefault(str(text), []).append(f"{float(lv):.0%}")
    return [[", ".join(lvs), text] for text, lvs in by_text.items()]


def build_payload(inp: Inputs, budget: int = 12, genes: list[str] | None = None) -> dict:
    """Everything the page shows, as JSON-ready data (summaries and top genes only)."""
    s = inp.summary
    level = _level(s)
    wells = _wells(s)
    info = s.uns[K.UNS]
    calibrated = "confidence" in s.obs
    views = _gene_views(s, level, list(genes or []))
    return {
        "meta": {
            "n_wells": s.n_obs, "n_controls": sum(w["ctrl"] for w in wells),
            "n_flagged": sum(w["flag"] for w in wells) if calibrated else None,
            "calibrated": calibrated, "intervals": str(info.get("intervals", "")),
            "level": level, "ood_threshold": float(info.get("ood_threshold", 0.05)),
            "n_genes": s.n_vars, "layout": plate_layout([w["pos"] for w in wells]),
            "plates": sorted({w["p"] for w in wells}), "has_delta": bool(views["tops"]),
            "top_n": TOP_N, "budget": budget, "symbols": views.pop("symbols"),
            "new_from": "seen_treatment" if "seen_treatment" in s.obs
            else "ood_flag" if "ood_flag" in s.obs else None,
            "n_new": sum(w["new"] for w in wells), "guarantee": _guarantee(info),
            "has_unc": "uncertainty" in s.obs,
        },
        "provenance": _provenance(inp), "wells": wells, **views,
        "next": _suggestions(s, budget), "reliability": _coverage(inp.metrics),
        "skill": _skill(inp.metrics), "risk": _risk(inp.metrics, s),
    }  # fmt: skip


def write_prediction_report(
    summary: ad.AnnData | str | Path,
    out: str | Path,
    generated: ad.AnnData | str | Path | None = None,
    budget: int = 12,
    metrics: dict | None = None,
    genes: list[str] | None = None,
) -> Path:
    """Write the prediction report of a ``phenoseq generate --summary`` output.

    Parameters
    ----------
    summary
        The per-group summary (AnnData or ``.h5ad``).
    out
        The HTML file to write (atomically).
    generated
        The generated cells (AnnData or ``.h5ad``; only ``uns['phenoseq']`` is read): the
        model's provenance.
    budget
        How many wells the "sequence next" list holds (:func:`phenoseq.uncertainty.suggest`).
    metrics
        An evaluation's ``metrics.json`` document (``phenoseq evaluate --summary``): adds the
        measured interval coverage (reliability diagram) and a pointer to the evaluation.
    genes
        Genes (symbols or var names) to add to the plate map's gene picker.
    """
    s, path = read_summary(summary)
    prov, name = read_provenance(generated) if generated is not None else (None, None)
    payload = build_payload(Inputs(s, path, prov, name, metrics), budget, genes)
    text = render_page(payload)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(out)
