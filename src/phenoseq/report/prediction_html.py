"""The prediction report's page: the static parts (summary card, provenance, intended use, the
treatment and sequencing tables) as HTML, the data as ``<script type="application/json">``,
and the report's own CSS and JavaScript (``assets/``) that draw the views as inline SVG."""

from __future__ import annotations

import html
import json
from importlib.resources import files

ASSETS = files("phenoseq.report") / "assets"
OVERVIEW_ROWS = 40  # treatments listed before "show the others"
CHIPS = 5  # genes per direction in the overview table

INTENDED = (
    "Ranking and triaging imaged wells of the same assay, cell line and "
    "conditions as the training data; forming hypotheses about which genes a treatment moves; "
    "choosing which wells to sequence next."
)
NOT_FOR = (
    "replacing sequencing where a claim depends on one gene; differential-expression "
    "p-values computed on generated cells (they shrink with the number of cells generated: "
    "pseudo-replication; use the intervals); wells flagged unlike the training data; other "
    "cell types, assays or imaging set-ups than the training data."
)


def _e(x) -> str:
    return html.escape(str(x))


def _num(v, nd: int = 2, signed: bool = False) -> str:
    if v is None:
        return "–"
    v = v if round(v, nd) != 0 else 0.0  # no "-0.00"
    return f"{v:+.{nd}f}" if signed else f"{v:.{nd}f}"


def _well_name(w: dict) -> str:
    return " ".join(x for x in (w["p"], w["w"]) if x) or w["g"]


def _tiles(d: dict) -> str:
    m = d["meta"]
    lv = f"{m['level']:.0%}"
    plural = "s" if m["n_controls"] != 1 else ""
    tiles = [
        ("", f"{m['n_wells']}", f"wells predicted ({m['n_controls']} control{plural})"),
        ("warn" if m["n_flagged"] else "",
         "–" if m["n_flagged"] is None else f"{m['n_flagged']}",
         "flagged unlike the training data (OOD)" if m["calibrated"]
         else "flagged: needs a calibrated model"),
        ("" if m["calibrated"] else "bad", "calibrated" if m["calibrated"] else "NOT calibrated",
         f"{lv} intervals: conformal" if m["calibrated"]
         else "raw draw quantiles: too narrow; no confidence (run phenoseq calibrate)"),
        ("", f"{len(d['next'])}", "wells suggested for sequencing"),
    ]  # fmt: skip
    if m["new_from"] == "seen_treatment":
        tiles.insert(
            2,
            (
                "warn" if m["n_new"] else "",
                f"{m['n_new']}",
                "wells of new compounds (not in training): hatched on the plate",
            ),
        )
    cov = d.get("reliability")
    cell = cov and (cov["coverage"].get("delta/seen") or cov["coverage"].get("pseudobulk/seen"))
    got = cell and cell.get(f"{m['level']:g}", {}).get("coverage")
    tiles.append(("", "–" if got is None else f"{got:.2f}",
                  f"measured coverage of the {lv} intervals (seen treatments)" if got is not None
                  else "coverage not measured: no sequenced wells here"))  # fmt: skip
    skill = d.get("skill")
    if skill:
        v = " / ".join("–" if skill[k] is None else f"{skill[k]:.2f}" for k in ("seen", "unseen"))
        tiles.append(("", v, "skill (seen / unseen treatments): fold-change correlation, "
                      "0 = training mean, 1 = replicate ceiling"))  # fmt: skip
    return "<div class=tiles>" + "".join(
        f"<div class='tile {c}'><b>{_e(v)}</b><span>{_e(t)}</span></div>" for c, v, t in tiles
    ) + "</div>"  # fmt: skip


def _trust(m: dict) -> str:
    if m["calibrated"] and m["has_unc"]:
        return (
            "Expected error: a well's mean per-gene error scale (log1p units; larger = less "
            "trustworthy). Confidence (0–1) ranks it among known-good calibration wells of "
            "treatments seen in training: the share of them whose expected error is at least "
            f"as large. Wells below {m['ood_threshold']:g} are flagged: do not act on their "
            "predictions, sequence them."
        )  # fmt: skip
    return (
        f"Confidence (0–1) says how typical a well's morphology is of the training wells: the "
        f"share of known-good calibration wells that look at least as unusual. Wells below "
        f"{m['ood_threshold']:g} are flagged: do not act on their predictions, sequence them."
        if m["calibrated"] else
        "This summary is not calibrated: intervals are the spread of the generator only and far "
        "too narrow, and there is no confidence or OOD flag. Run `phenoseq calibrate` on the "
        "model, then `phenoseq generate --summary` again."
    )  # fmt: skip


def _promise(m: dict) -> str:
    """What the calibration's intervals promise, per level (``uns['guarantee']``)."""
    if not m["guarantee"]:
        return ""
    items = "".join(f"<li><b>{_e(lv)}</b>: {_e(text)}</li>" for lv, text in m["guarantee"])
    return (
        "<p class=note>What the intervals promise (the calibration's guarantee: which new "
        f"wells they cover at the nominal rate):</p><ul class='note promise'>{items}</ul>"
    )


def summary_card(d: dict) -> str:
    prov = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in d["provenance"])
    m = d["meta"]
    return (
        "<section id=summary><h2>Summary</h2>" + _tiles(d)
        + f"<p class=note>{_e(_trust(m))} A gene is called <span class='gene up'>up</span> or "
        f"<span class='gene down'>down</span> when its whole {m['level']:.0%} interval of the "
        "change vs the plate's control lies above or below 0; otherwise it is "
        "<span class='gene unc'>uncertain</span> (drawn hollow / grey everywhere), however "
        "large the predicted change.</p>" + _promise(m)
        + "<div class=cols><div><h3>Model and settings</h3>"
        f"<table class=kv>{prov}</table></div><div><h3>Intended use</h3><p>{_e(INTENDED)}</p>"
        f"<p><b>Not for:</b> {_e(NOT_FOR)}</p></div></div></section>"
    )  # fmt: skip


def _chips(d: dict, i: int, key: str) -> str:
    t = d["tops"][i]
    at = {g: k for k, g in enumerate(t["genes"])}
    out = []
    for g in t[key][:CHIPS]:
        k = at[g]
        lo, hi, m = t["lo"][k], t["hi"][k], t["m"][k]
        cls = "up" if lo > 0 else "down" if hi < 0 else "unc"
        tip = f"{_num(m, 2, True)} [{_num(lo, 2, True)}, {_num(hi, 2, True)}]"
        name = _e(d["genes"][g])
        out.append(f"<span class='gene {cls}' title='{_e(tip)}'>{name} "
                   f"<small>{_num(m, 1, True)}</small></span>")  # fmt: skip
    return "".join(out) or "<span class=muted>none</span>"


def _tags(d: dict, w: dict) -> str:
    """The flag column: unlike the training data, a new compound (when the summary says)."""
    tags = ["<span class=flag>unlike training</span>"] if w["flag"] else []
    if w["new"] and d["meta"]["new_from"] == "seen_treatment":
        tags.append("<span class=new>new compound</span>")
    return " ".join(tags)


def _overview_row(d: dict, i: int) -> str:
    w = d["wells"][i]
    cls = " class=flagged" if w["flag"] else ""
    return (f"<tr data-i={i}{cls}><td>{_e(w['t'])}</td><td>{_e(_well_name(w))}</td>"
            f"<td class=num>{_num(w['conf'])}</td><td class=num>{_num(w['unc'], 3)}</td>"
            f"<td>{_tags(d, w)}</td>"
            f"<td>{_chips(d, i, 'up')}</td><td>{_chips(d, i, 'down')}</td></tr>")  # fmt: skip


def treatments_table(d: dict) -> str:
    if not d["tops"]:
        return ("<p class=note>No changes vs control: no group of this summary has a control "
                "of the same batch (its delta layers are empty). Include the plate's control "
                "wells in the morphology passed to `phenoseq generate --summary`.</p>")  # fmt: skip
    order = sorted(d["tops"], key=lambda i: (d["wells"][i]["t"], _well_name(d["wells"][i])))
    head = ("<thead><tr><th>treatment</th><th>well</th><th class=num>confidence</th>"
            f"<th class=num>expected error</th><th>flag</th><th>top {CHIPS} up</th>"
            f"<th>top {CHIPS} down</th></tr></thead>")  # fmt: skip
    first = "".join(_overview_row(d, i) for i in order[:OVERVIEW_ROWS])
    out = f"<table class='pick overview'>{head}<tbody>{first}</tbody></table>"
    if len(order) > OVERVIEW_ROWS:  # the rest drawn by the script from the data (smaller file)
        out += (f"<details id=more data-from={OVERVIEW_ROWS} data-chips={CHIPS}><summary>Show "
                f"the other {len(order) - OVERVIEW_ROWS} treatments</summary><table class='pick "
                f"overview' id=more-table>{head}<tbody></tbody></table></details>")  # fmt: skip
    return out


def _sig(v) -> str:
    """A priority with 3 significant digits (no ties from rounding small numbers)."""
    return "–" if v is None else f"{v:.3g}"


def next_table(d: dict) -> str:
    cols = (("rank", "num"), ("plate", ""), ("well", ""), ("treatment", ""),
            ("confidence", "num"), ("expected error", "num"),
            (f"mean {d['meta']['level']:.0%} interval width", "num"), ("wells informed", "num"),
            ("expected error reduction", "num"), ("reason", ""))  # fmt: skip
    head = "".join(f"<th class='{c}' data-col={k}>{_e(n)}</th>" for k, (n, c) in enumerate(cols))
    rows = []
    for r in d["next"]:
        w = d["wells"][r["i"]]
        cells = (r["rank"], w["p"], w["w"], w["t"], _num(r["conf"]), _num(w["unc"], 3),
                 _num(r["width"]), r["informed"], _sig(r["priority"]), r["reason"])  # fmt: skip
        rows.append(f"<tr data-i={r['i']}>" + "".join(
            f"<td class='{c}'>{_e(v)}</td>" for v, (_, c) in zip(cells, cols, strict=True)
        ) + "</tr>")  # fmt: skip
    return (f"<table class='pick sortable' id=next-table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")  # fmt: skip


def _error_words(m: dict) -> str:
    if m["has_unc"]:
        return "Expected error: the well's mean per-gene error scale."
    return "Expected error (no calibrated error scale here): half the mean interval width."


def _risk_note(d: dict) -> str:
    """The risk–coverage view's caption, or why it is not drawn."""
    r = d.get("risk")
    if not r:
        return ("<p class=note>Not shown: the risk–coverage curve needs sequenced held-out wells "
                "scored by `phenoseq evaluate --summary` (a calibrated summary); pass its "
                "metrics.json to `phenoseq report --metrics`.</p>")  # fmt: skip
    where = ("of the evaluated wells" if (r["mark"] or {}).get("of") == "evaluated"
             else "of this summary's wells (the curve: the evaluation's wells)")  # fmt: skip
    return (
        f"<p class=note>From the evaluation ({r['n']} sequenced held-out wells): wells kept "
        "from the most confident down; the y axis is the mean error (RMSE over genes of the "
        "predicted pseudo-bulk, log1p) of the kept wells. A confidence that ranks the errors "
        "starts low and rises to the mean error at full coverage; the oracle keeps wells by the "
        "error itself. The marker: the current threshold, confidence ≥ "
        f"{r['threshold']:g}, and the share {where} it keeps. AUROC: the chance that a well "
        "with a top-quartile error is less trusted than one without (0.5: a coin).</p>"
    )  # fmt: skip


def _data_json(d: dict) -> str:
    text = json.dumps(d, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/")  # no "</script>" inside the script element


def render_page(d: dict) -> str:
    """The whole report as one HTML string."""
    m = d["meta"]
    lv = f"{m['level']:.0%}"
    plates = ", ".join(m["plates"]) if any(m["plates"]) else "plate not recorded"
    names = "named by the symbols in var" if m["symbols"] else "named by var_names"
    reliability = "" if d.get("reliability") else (
        "<p class=note>Not shown: measuring coverage needs sequenced held-out wells. Run "
        "`phenoseq evaluate --summary S.h5ad ...` on wells that were sequenced and pass its "
        "metrics.json to `phenoseq report --metrics` (with --summary: drawn here).</p>"
    )  # fmt: skip
    body = f"""
<main>
<header><h1>PhenoSeq prediction report</h1>
<p class=sub>Predicted transcriptomes of {m["n_wells"]} imaged, unsequenced wells ({_e(plates)});
{m["n_genes"]} genes ({names}); changes are log fold changes (log1p units) vs the same plate's
control, with {lv} intervals.</p></header>
{summary_card(d)}
<section id=plate><h2>Plate map</h2>
<div class=controls><label>colour by <select id=layer></select></label>
<label id=gene-label>gene <select id=gene-pick></select></label></div>
<div id=plate-legend class=legend></div><div id=plate-view></div>
<p class=note>Rows A–P on the left, columns on top. Hover a well for its treatment, value,
interval and why it is flagged; click it to open the treatment below.</p></section>
<section id=next><h2>Wells to sequence next</h2>
<p class=note><b>Rule</b> (<code>phenoseq.uncertainty.suggest</code>): by expected error
reduction: sequencing one well measures its treatment, which informs every well of that
treatment here, so a well's reduction is the sum of the squared expected errors of all its
treatment's wells; one well per treatment (its most uncertain), wells unlike the training data
first. {_e(_error_words(m))} Click a row to highlight its well on the plate map; click a header
to sort.</p>
<div class=controls><button id=csv-list type=button>Download list (CSV)</button>
<button id=csv-plate type=button>Download plate layout (CSV)</button></div>
{next_table(d)}</section>
<section id=treatments><h2>What each treatment does</h2>
<p class=note>Predicted top genes up and down vs the control, by gene name, with the change
(log fold change). Hover a gene for its {lv} interval; click a row for the drill-down.</p>
{treatments_table(d)}</section>
<section id=heatmap><h2>Top genes × treatments</h2><div id=heat-view></div></section>
<section id=drill><h2>Treatment drill-down</h2>
<div class=controls><label>treatment <select id=treat-pick></select></label></div>
<p id=drill-info class=note></p><div class=pair><div id=forest-view></div>
<div id=volcano-view></div></div></section>
<section id=reliability><h2>Interval reliability</h2>{reliability}
<div id=reliability-view></div></section>
<section id=risk><h2>Does the confidence rank the errors?</h2>{_risk_note(d)}
<div id=risk-view></div><div id=risk-legend class=keys></div></section>
<p class=foot>Full predictions (every gene, every level) are in the summary .h5ad beside this
report; this page embeds the top genes only and works offline.</p>
</main>
<div id=tip role=tooltip></div>
<svg width=0 height=0 style="position:absolute" aria-hidden=true><defs>
<pattern id=ps-hatch width=6 height=6 patternUnits=userSpaceOnUse patternTransform="rotate(45)">
<rect width=6 height=6 fill="#fff"/><line x1=0 y1=0 x2=0 y2=6 stroke="#8c8c8c" stroke-width=2.2/>
</pattern><pattern id=ps-hatch-dark width=6 height=6 patternUnits=userSpaceOnUse
patternTransform="rotate(45)"><line x1=0 y1=0 x2=0 y2=6 stroke="#fff" stroke-width=1.6/>
<line x1=1.6 y1=0 x2=1.6 y2=6 stroke="#222" stroke-width=1.2/></pattern></defs></svg>
<script type="application/json" id=phenoseq-data>{_data_json(d)}</script>
<script>{(ASSETS / "prediction.js").read_text(encoding="utf-8")}</script>"""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>PhenoSeq prediction report</title>"
        f"<style>{(ASSETS / 'report.css').read_text(encoding='utf-8')}</style></head>"
        f"<body>{body}\n<noscript><p class=note>The plate map and the charts are drawn by "
        "the JavaScript embedded in this file.</p></noscript></body></html>"
    )
