"""`phenoseq evaluate` and `phenoseq report` on a tiny demo run: schema, leak check, training-file
checks, and the report rendered by a real browser (headless chromium)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from browser import assert_fits, browse, chromium, probe, screenshot
from phenoseq.cli import main
from phenoseq.demo import run_demo
from phenoseq.evaluate.suite import BASELINES, INPUTS, METRICS
from phenoseq.report.html import UNDER, ranking_table, width_table
from phenoseq.report.plots import draw, figures_for
from test_demo import tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluate") / "demo"
    run_demo(out, tiny(), progress=False)
    return out


def evaluate_args(run: Path, out: Path, **over) -> list[str]:
    args = {"--model": run / "model", "--generated": run / "generated.h5ad",
            "--expression": run / "heldout_expression.h5ad",
            "--morphology": run / "heldout_morphology.h5ad", "--out": out} | over  # fmt: skip
    return ["evaluate", *(str(x) for kv in args.items() for x in kv), "--quiet"]


def test_evaluate_writes_the_documented_schema(run, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    main(evaluate_args(run, out))
    assert "metrics written to" in capsys.readouterr().out
    m = json.loads(out.read_text())
    assert set(m["baselines"]) == set(BASELINES)
    for entry in (m["model"], *m["baselines"].values(), m["ceilings"]["split_half"]):
        assert set(entry) == set(METRICS)
        for metric in METRICS:
            assert {"seen", "unseen", "all"} <= set(entry[metric])
    assert set(m["treatment_identification"]["balanced_accuracy"]) == set(INPUTS)
    assert "gap_closure" in m["treatment_identification"]
    assert {"real", "model", *BASELINES} == set(m["retrieval_map"])
    seen = m["model"]["energy_distance"]["seen"]
    assert seen["n"] > 0 and np.isfinite(seen["value"])
    assert m["model"]["energy_distance"]["unseen"]["n"] > 0  # the simulator's unseen compound
    assert (tmp_path / "metrics.plots.npz").is_file()
    # the CLI gives the numbers the demo's library call gave (same seed, same inputs)
    demo = json.loads((run / "metrics.json").read_text())
    assert demo["model"]["energy_distance"] == m["model"]["energy_distance"]
    assert demo["baselines"]["ridge"] == m["baselines"]["ridge"]


def test_evaluate_refuses_training_groups(run, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    full = run / "simulated" / "expression.h5ad"  # every replicate, training ones included
    with pytest.raises(SystemExit) as exc:
        main(evaluate_args(run, out, **{"--expression": full}))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "were in training" in err and "Fix:" in err
    assert not out.exists() and not (tmp_path / "metrics.plots.npz").exists()


def _model_copy(run: Path, tmp_path: Path, edit) -> Path:
    model = tmp_path / "model"
    shutil.copytree(run / "model", model)
    doc = json.loads((model / "config.json").read_text())
    edit(doc["registry"]["inputs"])
    (model / "config.json").write_text(json.dumps(doc))
    return model


def test_changed_or_missing_training_files_are_clear_errors(run, tmp_path, capsys):
    out = tmp_path / "metrics.json"

    def changed(inputs):
        inputs["sha256"]["expression"] = "0" * 64

    def missing(inputs):
        inputs["morphology"] = str(tmp_path / "gone.h5ad")

    for edit, message in ((changed, "changed since training"), (missing, "file is missing")):
        model = _model_copy(run, tmp_path / edit.__name__, edit)
        with pytest.raises(SystemExit):
            main(evaluate_args(run, out, **{"--model": model}))
        err = capsys.readouterr().err
        assert message in err and "--train-" in err
        assert not out.exists()
    # an explicit override replaces the recorded (here missing) file
    model = _model_copy(run, tmp_path / "override", missing)
    moved = {"--model": model, "--train-morphology": run / "simulated/morphology.h5ad"}
    main(evaluate_args(run, out, **moved))
    assert out.exists()


def test_report_needs_only_the_metrics_and_refuses_a_broken_pair(run, tmp_path, capsys):
    metrics = tmp_path / "m.json"
    shutil.copy(run / "metrics.json", metrics)
    with pytest.raises(SystemExit):
        main(["report", "--metrics", str(metrics), "--out", str(tmp_path / "r.html")])
    assert "plot data is missing" in capsys.readouterr().err
    shutil.copy(run / "metrics.plots.npz", tmp_path / "m.plots.npz")
    main(["report", "--metrics", str(metrics), "--out", str(tmp_path / "r.html"), "--figures",
          str(tmp_path / "figs")])  # fmt: skip
    assert len(list((tmp_path / "figs").glob("*.png"))) == 8  # + reliability, risk–coverage
    text = (tmp_path / "r.html").read_text()
    assert text.count("data:image/png;base64,") == 8 and "src='http" not in text
    assert "id='risk_coverage'" in text and "AUROC: top-quartile error" in text
    assert "train-mean baseline's width" in text  # interval width beside the baseline's
    # metrics.json from before the error ranking: the report as it was (7 figures)
    old = json.loads(metrics.read_text())
    for key in ("error_ranking", "width_vs_train_mean", "ood_auroc_uncertainty"):
        del old["uncertainty"][key]
    metrics.write_text(json.dumps(old))
    main(["report", "--metrics", str(metrics), "--out", str(tmp_path / "old.html")])
    text = (tmp_path / "old.html").read_text()
    assert text.count("data:image/png;base64,") == 7 and "risk_coverage" not in text
    (tmp_path / "m.plots.npz").write_bytes(b"not an npz")
    with pytest.raises(SystemExit):
        main(["report", "--metrics", str(metrics), "--out", str(tmp_path / "r2.html")])
    assert "sha256 differs" in capsys.readouterr().err
    assert not (tmp_path / "r2.html").exists()


# ------------------------------------------------------------------------- browser rendering

BBOX_SCRIPT = """<script>
document.body.setAttribute('data-height', document.documentElement.scrollHeight);
for (const f of document.querySelectorAll('figure.plot')) {
  const r = f.querySelector('img').getBoundingClientRect();
  const ok = f.querySelector('img').complete && f.querySelector('img').naturalWidth > 0;
  f.setAttribute('data-bbox', [r.left, r.top + window.scrollY, r.width, r.height, ok].join(','));
}
</script>"""


def test_report_renders_in_a_real_browser(run, tmp_path):
    exe = chromium()
    from PIL import Image

    page = tmp_path / "probe.html"
    page.write_text((run / "report.html").read_text().replace("</body>", BBOX_SCRIPT + "</body>"))
    width = 1400
    dom = browse(exe, f"--window-size={width},1000", "--dump-dom", page.as_uri()).stdout
    height = int(dom.split('data-height="')[1].split('"')[0])
    boxes = [b.split('"')[0] for b in dom.split('data-bbox="')[1:]]
    assert len(boxes) == 8, dom[:500]  # the demo calibrates: + reliability, risk–coverage
    shot = screenshot(exe, page, width, height, tmp_path / "shot.png")
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    for box in boxes:
        left, top, w, h, ok = box.split(",")
        assert ok == "true", f"an image did not decode: {box}"
        x0, y0 = int(float(left)), int(float(top))
        area = img[y0 : y0 + int(float(h)), x0 : x0 + int(float(w))]
        assert area.shape[0] > 100 and area.shape[1] > 300, box
        ink = (area < 200).mean()  # share of non-white pixels: axes, bars, points, text
        assert ink > 0.02 and area.std() > 20, f"blank plot area at {box}: ink {ink:.3f}"


@pytest.mark.parametrize("width", [1000, 1400])
def test_evaluation_report_fits_the_window(run, tmp_path, width):
    """No sideways scrolling at 1000 or 1400 px; plain metric names, not code names, head the
    tables; the per-treatment table and the fold-change figure are there, with gene names."""
    exe = chromium()
    r = probe(exe, run / "report.html", width, tmp_path)
    assert_fits(r, width, "the evaluation report")
    text = (run / "report.html").read_text()
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", text)
    assert "Energy distance ↓" in heads and not any("mmd_rbf" in h for h in heads)
    assert "Scores per treatment" in text and "id='fold_changes'" in text
    assert "slightly negative" in text and "<th>model</th>" in text  # provenance as a table
    genes = np.load(run / "metrics.plots.npz")["fold_change_genes"]
    assert genes.shape[1] == 10 and str(genes[0, 0]).startswith("G")  # named genes plotted


def _uncertainty(n: int = 8) -> dict:
    """The ``uncertainty`` section of ``evaluate --summary``, built by hand."""
    error = np.linspace(0.4, 1.2, n)
    k = np.arange(1, n + 1)
    rank = {"confidence": np.arange(n), "ood_score": np.arange(n)[::-1]}
    curves = {name: {"coverage": (k / n).tolist(), "risk": (np.cumsum(error[o]) / k).tolist(),
                     "aurc": float((np.cumsum(error[o]) / k).mean()),
                     "oracle_aurc": float((np.cumsum(error) / k).mean()),
                     "random_aurc": float(error.mean())} for name, o in rank.items()}  # fmt: skip
    cov = {"0.9": {"coverage": 0.88, "mean_width": 1.0, "n_groups": n}}
    return {"coverage": {"pseudobulk/seen": cov, "pseudobulk/unseen": cov}, "ood_auroc": 0.7,
            "ood_auroc_uncertainty": 0.9,
            "width_vs_train_mean": {"0.9": {"mean_width": 1.0, "train_mean_width": 1.6}},
            "error_ranking": {"error": {f"g{i}": e for i, e in enumerate(error)},
                              "auroc_top_quartile": {"confidence": 1.0, "ood_score": 0.0},
                              "risk_coverage": curves}}  # fmt: skip


def test_risk_coverage_figure_and_tables_from_hand_made_metrics():
    """The risk–coverage figure (a line per score, the oracle and the random line, AURC in the
    legend), the AUROC table (best in bold, the gain from random to oracle), the width beside
    the train-mean baseline's; none of it for metrics without the keys."""
    m = {"uncertainty": _uncertainty()}
    assert figures_for(m)[-2:] == ["reliability", "risk_coverage"]
    fig = draw("risk_coverage", m, {})
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(legend) == 4 and legend[-1].startswith("random order")
    assert any(t.startswith("confidence") and "AURC 0.6" in t for t in legend)
    assert len(fig.axes[0].lines) == 4  # two scores, the oracle, the random line
    table = ranking_table(m)
    assert "<td class='num best'>1.000</td>" in table  # confidence ranks the errors perfectly
    assert "<td class=num>1.000</td></tr>" in table  # ... so it reaches the oracle: gain 1
    assert "expected error 0.900" in table and "distance to the training data 0.700" in table
    width = width_table(m)
    assert "<td class=num>1.000</td><td class=num>1.600</td><td>narrower</td>" in width
    m["uncertainty"]["width_vs_train_mean"]["0.9"]["train_mean_width"] = 0.5
    assert "<b>wider</b>" in width_table(m)
    # per-subset widths: each of seen / unseen beside its own baseline
    m["uncertainty"]["width_vs_train_mean"] |= {
        "0.9/seen": {"mean_width": 0.4, "train_mean_width": 1.0},
        "0.9/unseen": {"mean_width": 2.0, "train_mean_width": 1.5},
    }
    rows = width_table(m).split("<tr>")[2:]
    assert "<td>seen</td>" in rows[0] and "<td>narrower</td>" in rows[0]
    assert "<td>unseen</td>" in rows[1] and "<b>wider</b>" in rows[1] and len(rows) == 2
    for key in ("error_ranking", "width_vs_train_mean", "ood_auroc_uncertainty"):
        del m["uncertainty"][key]
    assert "risk_coverage" not in figures_for(m) and UNDER["reliability"](m) == ""


def test_generated_cells_must_cover_every_held_out_group(run, tmp_path, capsys):
    import anndata as ad

    gen = ad.read_h5ad(run / "generated.h5ad")
    first = gen.obs["phenoseq_group"].iloc[0]
    gen[gen.obs["phenoseq_group"] != first].copy().write_h5ad(tmp_path / "partial.h5ad")
    with pytest.raises(SystemExit):
        main(evaluate_args(run, tmp_path / "m.json", **{"--generated": tmp_path / "partial.h5ad"}))
    err = capsys.readouterr().err
    assert "no generated cells for 1 held-out group" in err and "phenoseq generate" in err
    gen[:, gen.var_names[:-1]].copy().write_h5ad(tmp_path / "genes.h5ad")
    with pytest.raises(SystemExit):
        main(evaluate_args(run, tmp_path / "m.json", **{"--generated": tmp_path / "genes.h5ad"}))
    assert "lacks 1 of the model's 40 genes" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
