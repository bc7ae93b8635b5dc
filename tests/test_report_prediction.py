"""The prediction report of unsequenced wells, on a summary AnnData built by hand: gene names and
direction calls, the suggestion list, bad inputs, the CLI's modes, and the page in a real
browser at 1000 and 1400 px (no sideways scrolling, names and confidence shown)."""

from __future__ import annotations

import json
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from browser import assert_fits, chromium, probe
from phenoseq.cli import main
from phenoseq.errors import InputError
from phenoseq.report.prediction import (
    Inputs,
    build_payload,
    gene_names,
    parse_well,
    plate_layout,
    write_prediction_report,
)
from phenoseq.uncertainty import suggest

SYMBOLS = ["IL6", "MYC", "TP53", "CXCL8", "HMOX1", "NQO1", "ATF3", "DDIT3", "EGR1", "FOS",
           "JUN", "GADD45A", "CDKN1A", "MDM2", "BAX", "SESN2", "TXNRD1", "GCLM", "SQSTM1",
           "HSPA1A", "DNAJB1", "ASNS", "TRIB3", "VEGFA"]  # fmt: skip


def well(k: int, rows: int) -> str:
    return f"{chr(65 + k % rows)}{k // rows + 1:02d}"


def summary(n_treated: int = 5, calibrated: bool = True, long_names: bool = False,
            rows: int = 8, seed: int = 0, old: bool = False) -> ad.AnnData:  # fmt: skip
    """A ``generate --summary`` output: control 'DMSO' in A01, treated groups (drugA: IL6 up,
    MYC down, TP53 a large change whose interval crosses 0; drugB flagged and a new compound,
    drugC a new compound not flagged), and one group of a batch without a control (no deltas).
    ``old``: as summaries before uncertainty II were (no seen_treatment, uncertainty,
    guarantee)."""
    rng = np.random.default_rng(seed)
    n, g = n_treated + 2, len(SYMBOLS)
    names = ["DMSO"] + [
        f"drug{chr(65 + k)}" if not long_names else f"BRD-K{k:05d}-001-long-compound-name"
        for k in range(n_treated)
    ]
    groups = [f"{t}_P1" for t in names] + ["orphan_P2"]
    delta = rng.normal(0, 0.3, (n, g))
    half = np.full((n, g), 0.8)
    delta[0] = 0.0  # the control against itself
    delta[1, :3], half[1, :3] = [2.0, -1.5, 1.2], [0.5, 0.5, 1.5]
    delta[-1] = np.nan
    mean = 1.0 + rng.random((n, g))
    obs = pd.DataFrame({
        "Metadata_Plate": ["P1"] * (n - 1) + ["P2"],
        "Metadata_Well": [well(k, rows) for k in range(n - 1)] + ["H12"],
        "Treatment": names + ["orphan"], "dose": [0.0] + [1.0] * n_treated + [1.0],
        "control_group": ["DMSO_P1"] * (n - 1) + [""],
        "mean_width_0.5": 1.0, "mean_width_0.9": rng.uniform(1, 3, n),
    }, index=groups)  # fmt: skip
    if calibrated:
        obs["confidence"] = np.r_[0.6, 0.8, 0.02, rng.uniform(0.1, 1, n - 3)]
        obs["ood_score"] = 1 / obs["confidence"]
        obs["ood_flag"] = obs["confidence"] < 0.05
        obs["uncertainty"] = np.r_[0.1, 0.2, 0.9, rng.uniform(0.2, 0.6, n - 3)]
    obs["seen_treatment"] = [k not in (2, 3) for k in range(n)]
    if old:
        obs = obs.drop(columns=["seen_treatment", "uncertainty"], errors="ignore")
    var = pd.DataFrame({"gene_symbols": SYMBOLS}, index=[f"ENSG{j:05d}" for j in range(g)])
    s = ad.AnnData(mean.astype(np.float32), obs=obs, var=var)
    s.layers["mean"] = mean.astype(np.float32)
    for lv, f in (("0.5", 0.4), ("0.9", 1.0)):
        s.layers[f"lower_{lv}"], s.layers[f"upper_{lv}"] = mean - f, mean + f
        s.layers[f"delta_lower_{lv}"] = (delta - f * half).astype(np.float32)
        s.layers[f"delta_upper_{lv}"] = (delta + f * half).astype(np.float32)
    s.layers["delta_mean"] = delta.astype(np.float32)
    s.uns["phenoseq"] = {
        "levels": [0.5, 0.9], "n_draws": 4, "n_cells_per_draw": 3, "ood_threshold": 0.05,
        "intervals": "conformal" if calibrated else "raw draw quantiles (uncalibrated)",
        "label_key": "Treatment",
        "settings": {"sample": {"sampler": "dpmpp_2m", "n_steps": 20, "guidance": 2.0,
                                "seed": 0}},
    }  # fmt: skip
    if calibrated and not old:
        s.uns["phenoseq"]["guarantee"] = {"0.5": GUARANTEE, "0.9": GUARANTEE}
    return s


GUARANTEE = "a new replicate: conformal over 2 calibration replicates"


def test_wells_plates_and_gene_symbols():
    assert parse_well("B07") == (1, 6) and parse_well(" b7 ") == (1, 6)
    assert parse_well("P24") == (15, 23) and parse_well("Q01") is None
    assert parse_well("A25") is None and parse_well("well 3") is None
    assert plate_layout([(0, 0), (7, 11)]) == 96 and plate_layout([(8, 0)]) == 384
    assert plate_layout([None]) is None
    var = pd.DataFrame({"feature_name": ["IL6", None, ""]}, index=["E1", "E2", "E3"])
    assert gene_names(var).tolist() == ["IL6", "E2", "E3"]  # a missing symbol: the id
    assert gene_names(pd.DataFrame(index=["E1"])).tolist() == ["E1"]


def test_treatments_get_named_top_genes_with_direction_calls():
    s = summary()
    d = build_payload(Inputs(s), budget=3)
    m = d["meta"]
    assert m["layout"] == 96 and m["n_wells"] == 7 and m["n_controls"] == 1
    assert m["n_flagged"] == 1 and m["calibrated"] and m["level"] == 0.9 and m["symbols"]
    names = d["genes"]
    # treated wells only: not the control (its own delta is 0), not the group without one
    assert sorted(d["tops"]) == [1, 2, 3, 4, 5]
    a = d["tops"][1]
    up = [names[g] for g in a["up"]]
    assert up[0] == "IL6" and names[a["down"][0]] == "MYC"
    at = {names[g]: k for k, g in enumerate(a["genes"])}
    assert a["lo"][at["IL6"]] > 0 and a["hi"][at["MYC"]] < 0  # called up / down
    assert a["lo"][at["TP53"]] < 0 < a["hi"][at["TP53"]]  # large but uncertain
    assert "TP53" in up
    # the heatmap: clustered orders of the treated wells and of genes embedded in the picker
    heat = d["heat"]
    assert sorted(heat["rows"]) == [1, 2, 3, 4, 5]
    assert set(heat["cols"]) <= set(d["pick"]["cols"]) and len(set(heat["cols"])) > 3
    assert d["pick"]["m"][0][0] == 0 and d["pick"]["m"][6][0] is None  # control 0, orphan NaN
    # the wells to sequence next are suggest()'s, in its order
    want = suggest(s, 3)["group"].tolist()
    assert [s.obs_names[r["i"]] for r in d["next"]] == want
    assert d["next"][0]["reason"].startswith("unlike the training data")
    prov = dict(d["provenance"])
    assert "dpmpp_2m, 20 steps, guidance 2.0" in prov["sampler"]
    assert "not recorded" in prov["model"]  # no --generated


def test_report_file_is_self_contained_small_and_names_genes(tmp_path):
    s = summary()
    gen = ad.AnnData(np.zeros((2, 3), np.float32))
    gen.uns["phenoseq"] = {"sampler": "dpmpp_2m", "n_steps": 20, "guidance": 2.0, "seed": 3,
                           "model": "/models/screen1", "version": "0.1.0"}  # fmt: skip
    gen.write_h5ad(tmp_path / "g.h5ad")
    s.write_h5ad(tmp_path / "s.h5ad")
    out = write_prediction_report(tmp_path / "s.h5ad", tmp_path / "r.html", tmp_path / "g.h5ad",
                                  genes=["VEGFA"])  # fmt: skip
    text = out.read_text()
    assert out.stat().st_size < 150_000
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", text)  # nothing from a network
    assert "<script src" not in text and text.count('type="application/json"') == 1
    assert "'gene up' title='+2.00 [+1.50, +2.50]'>IL6 <small>+2.0</small>" in text
    assert "'gene down' title='-1.50 [-2.00, -1.00]'>MYC <small>-1.5</small>" in text
    assert "'gene unc' title='+1.20 [-0.30, +2.70]'>TP53" in text  # uncertain: hollow chip
    assert "ENSG00000 " not in text  # symbols, not ids, label the genes
    assert "/models/screen1" in text and "sha256" in text  # provenance table
    assert "confidence" in text and "unlike training" in text
    data = json.loads(re.search(r"id=phenoseq-data>(.*?)</script>", text, re.S).group(1))
    picked = [data["genes"][g] for g in data["pick"]["cols"]]
    assert "VEGFA" in picked  # --genes adds to the plate map's picker
    assert "Not shown: measuring coverage needs sequenced" in text  # no reliability diagram


def test_uncalibrated_summary_and_a_plate_without_controls(tmp_path):
    s = summary(calibrated=False)
    d = build_payload(Inputs(s))
    assert not d["meta"]["calibrated"] and d["meta"]["n_flagged"] is None
    assert all(w["conf"] is None for w in d["wells"])
    text = write_prediction_report(s, tmp_path / "r.html").read_text()
    assert "NOT calibrated" in text and "run phenoseq calibrate" in text
    for k in [k for k in s.layers if k.startswith("delta")]:
        del s.layers[k]
    text = write_prediction_report(s, tmp_path / "r2.html").read_text()
    assert "No changes vs control" in text


def test_bad_inputs_are_one_clear_error_and_nothing_is_written(tmp_path):
    cells = ad.AnnData(np.zeros((3, 2), np.float32),
                       obs=pd.DataFrame({"phenoseq_group": ["a", "a", "b"]},
                                        index=["c0", "c1", "c2"]))  # fmt: skip
    cells.write_h5ad(tmp_path / "cells.h5ad")
    with pytest.raises(InputError, match="generated cells, not a per-group summary") as exc:
        write_prediction_report(tmp_path / "cells.h5ad", tmp_path / "r.html")
    assert "--generated" in exc.value.fix
    with pytest.raises(InputError, match="not a `phenoseq generate --summary` output"):
        write_prediction_report(
            ad.AnnData(
                np.zeros((2, 2), np.float32),
                obs=pd.DataFrame(index=["g0", "g1"]),
                var=pd.DataFrame(index=["a", "b"]),
            ),
            tmp_path / "r.html",
        )
    with pytest.raises(InputError, match="does not exist"):
        write_prediction_report(tmp_path / "missing.h5ad", tmp_path / "r.html")
    (tmp_path / "junk.h5ad").write_text("not hdf5")
    with pytest.raises(InputError, match="cannot be read"):
        write_prediction_report(tmp_path / "junk.h5ad", tmp_path / "r.html")
    with pytest.raises(InputError, match="no generation provenance"):
        write_prediction_report(summary(), tmp_path / "r.html", tmp_path / "cells.h5ad")
    assert not (tmp_path / "r.html").exists()


def ranking(groups: list[str], seed: int = 0) -> dict:
    """The ``error_ranking`` of ``evaluate --summary`` for ``groups``, built by hand."""
    error = np.random.default_rng(seed).uniform(0.5, 1.5, len(groups))
    k = np.arange(1, len(groups) + 1)
    curves = {}
    for name, order in (("confidence", np.argsort(error)), ("ood_score", np.arange(len(k)))):
        risk = np.cumsum(error[order]) / k
        curves[name] = {"coverage": (k / len(k)).tolist(), "risk": risk.tolist(),
                        "aurc": risk.mean(), "random_aurc": error.mean(),
                        "oracle_aurc": (np.cumsum(np.sort(error)) / k).mean()}  # fmt: skip
    return {"error": dict(zip(groups, error.tolist(), strict=True)),
            "auroc_top_quartile": {"confidence": 0.9, "ood_score": None},
            "risk_coverage": curves}  # fmt: skip


def _metrics(tmp_path, groups: list[str] | None = None):
    """A metrics.json with the uncertainty section (and its plot data beside it); with
    ``groups``, the error ranking of uncertainty II for them."""
    np.savez_compressed(tmp_path / "m.plots.npz", x=np.zeros(1))
    cov = {lv: {"coverage": c, "mean_width": 1.0, "n_groups": 5}
           for lv, c in (("0.5", 0.55), ("0.9", 0.87))}  # fmt: skip

    def r(v):
        return {"pearson_delta": {"seen": {"value": v}, "unseen": {"value": None}}}

    doc = {"model": r(0.7), "baselines": {"train_mean": r(0.4)},
           "ceilings": {"split_half": r(0.8)},
           "uncertainty": {"coverage": {"delta/seen": cov, "pseudobulk/seen": cov},
                           "ood_auroc": 0.8}}  # fmt: skip
    if groups is not None:
        doc["uncertainty"]["error_ranking"] = ranking(groups)
    (tmp_path / "m.json").write_text(json.dumps(doc))
    return tmp_path / "m.json"


def test_cli_report_modes(tmp_path, capsys):
    summary().write_h5ad(tmp_path / "s.h5ad")
    main(["report", "--summary", str(tmp_path / "s.h5ad"), "--out", str(tmp_path / "p.html"),
          "--budget", "2", "--metrics", str(_metrics(tmp_path))])  # fmt: skip
    assert "prediction report written to" in capsys.readouterr().out
    text = (tmp_path / "p.html").read_text()
    assert "0.87" in text and "Not shown: measuring coverage" not in text  # measured coverage
    assert "<b>0.75 / –</b>" in text  # skill: (0.7 - 0.4) / (0.8 - 0.4), no unseen value
    assert "Not shown: the risk–coverage curve needs" in text  # metrics without error ranking
    rows = text.split("<script")[0].count("<tr data-i=")
    assert rows == 2 + 5  # 2 wells to sequence, 5 treated in the overview
    s, m = str(tmp_path / "s.h5ad"), str(tmp_path / "m.json")
    for args, message in (
        ([], "nothing to report"),
        (["--summary", s, "--figures", m], "--figures writes the evaluation"),
        (["--metrics", m, "--generated", s], "belong to the prediction"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(["report", *args, "--out", str(tmp_path / "x.html")])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Fix:" in err
    assert not (tmp_path / "x.html").exists()


def test_new_compounds_expected_error_and_why_each_well_is_sequenced(tmp_path):
    """seen_treatment marks new compounds (drugB, drugC), the expected error is shown, the
    sequencing list says how many wells a measurement informs and why; the guarantee."""
    s = summary()
    s.obs.loc["drugD_P1", "Treatment"] = "drugA"  # a treatment in two wells
    d = build_payload(Inputs(s), budget=6)
    m = d["meta"]
    assert m["new_from"] == "seen_treatment" and m["n_new"] == 2 and m["has_unc"]
    assert [w["new"] for w in d["wells"]][:4] == [False, False, True, True]
    assert d["wells"][2]["flag"] and not d["wells"][3]["flag"]  # new but not flagged: drugC
    assert d["wells"][2]["unc"] == 0.9
    assert m["guarantee"] == [["50%, 90%", GUARANTEE]]  # one text: its levels together
    table = suggest(s, 6)
    assert len(d["next"]) == 6  # one well per treatment: 6 treatments, 7 wells
    assert [r["informed"] for r in d["next"]] == table["wells_informed"].tolist()
    drug_a = next(r for r in d["next"] if d["wells"][r["i"]]["t"] == "drugA")
    assert drug_a["informed"] == 2 and "informs 2 wells" in drug_a["reason"]
    assert all(r["priority"] > 0 for r in d["next"])
    text = write_prediction_report(s, tmp_path / "r.html", budget=6).read_text()
    page = " ".join(text.split("<script")[0].split())
    assert "by expected error reduction" in page  # the rule, above the table
    assert "informs every well of that treatment" in page
    assert "wells informed</th>" in page and "expected error reduction</th>" in page
    assert "<td class='num'>0.900</td>" in page  # drugB's expected error in the table
    assert page.count("<span class=new>new compound</span>") == 2  # overview: drugB, drugC
    assert "wells of new compounds" in page and GUARANTEE in page


def test_old_summaries_and_metrics_without_the_new_keys_still_report(tmp_path):
    """A summary without seen_treatment / uncertainty / guarantee: flagged wells count as new
    (hatched, as before), no expected error; metrics without an error ranking: no curve."""
    s = summary(old=True)
    d = build_payload(Inputs(s, metrics=json.loads(_metrics(tmp_path).read_text())))
    m = d["meta"]
    assert m["new_from"] == "ood_flag" and not m["has_unc"] and m["guarantee"] == []
    assert [w["new"] for w in d["wells"]] == [w["flag"] for w in d["wells"]]
    assert all(w["unc"] is None for w in d["wells"]) and d["risk"] is None
    text = write_prediction_report(s, tmp_path / "r.html").read_text()
    assert "What the intervals promise" not in text and "wells of new compounds" not in text
    assert "half the mean interval width" in text  # what the expected error is here


def test_risk_coverage_with_the_confidence_threshold(tmp_path):
    """The evaluation's curves, the oracle, and the threshold's coverage: of the evaluated
    groups when the summary holds them, else of the summary's wells."""
    s = summary()
    groups = list(s.obs_names)
    metrics = json.loads(_metrics(tmp_path, groups).read_text())
    r = build_payload(Inputs(s, metrics=metrics))["risk"]
    assert set(r["curves"]) == {"confidence", "ood_score"} and r["n"] == len(groups)
    assert r["curves"]["confidence"]["auroc"] == 0.9 and r["curves"]["ood_score"]["auroc"] is None
    assert r["oracle"] == pytest.approx(r["curves"]["confidence"]["y"], abs=1e-3)  # sorted
    kept = float((s.obs["confidence"] >= 0.05).mean())  # drugB is below the threshold
    assert r["mark"] == {"x": round(kept, 4), "of": "evaluated"} and r["threshold"] == 0.05
    metrics["uncertainty"]["error_ranking"] = ranking(["elsewhere_1", "elsewhere_2"])
    r = build_payload(Inputs(s, metrics=metrics))["risk"]
    assert r["mark"]["of"] == "plate" and r["n"] == 2
    text = write_prediction_report(s, tmp_path / "r.html", metrics=metrics).read_text()
    assert "Does the confidence rank the errors?" in text and "Not shown: the risk" not in text


@pytest.mark.parametrize("width", [1000, 1400])
def test_prediction_report_fits_the_window_in_a_real_browser(tmp_path, width):
    """A 384-well plate of long compound names: no sideways scrolling at 1000 or 1400 px; the
    charts name genes by symbol and the confidence is shown."""
    exe = chromium()
    s = summary(n_treated=60, long_names=True, rows=16)
    metrics = json.loads(_metrics(tmp_path, list(s.obs_names)).read_text())
    page = write_prediction_report(s, tmp_path / "r.html", metrics=metrics)
    r = probe(exe, page, width, tmp_path)
    assert r["ready"] and not r["errors"], f"the report's script failed: {r['errors']}"
    assert r["layers"] == ["conf", "flag", "gene", "rank"]
    assert r["marked"] >= 1  # the clicked row's well (and the drill-down's) ringed on the plate
    assert_fits(r, width, "the prediction report")
    assert r["wells"] == 62  # every predicted well drawn on the 384-well plate map
    texts = set(r["svg_text"])
    assert {"A", "P", "1", "24"} <= texts  # rows A-P, columns 1-24
    assert {"IL6", "MYC"} <= texts  # gene symbols in the heatmap / forest plot
    assert r["heat_dots"] >= 60 * 4 and r["forest_rows"] > 10
    assert r["more_rows"] == 20  # treatments past the first 40, drawn from the data
    assert "confidence 0.80" in r["drill"]  # the first treatment's confidence
    kept = round(100 * float((s.obs["confidence"] >= 0.05).mean()))
    assert f"threshold: confidence ≥ 0.05 keeps {kept}%" in texts  # the risk–coverage marker
    assert r["risk_lines"] == 3  # confidence, OOD score, oracle
    assert "expected error" in r["drill"]


def test_prediction_report_without_wells_calibration_or_controls_still_draws(tmp_path):
    """Uncalibrated, no well positions, then no deltas either: the script finishes without an
    error and the page still fits 1000 px."""
    exe = chromium()
    s = summary(calibrated=False)
    del s.obs["Metadata_Well"]
    r = probe(exe, write_prediction_report(s, tmp_path / "a.html"), 1000, tmp_path)
    assert r["ready"] and not r["errors"] and r["wells"] == 0
    assert r["layers"] == ["gene", "rank"]  # no confidence layers without a calibration
    assert_fits(r, 1000, "the prediction report without wells")
    for k in [k for k in s.layers if k.startswith("delta")]:
        del s.layers[k]
    r = probe(exe, write_prediction_report(s, tmp_path / "b.html"), 1000, tmp_path)
    assert r["ready"] and not r["errors"] and r["layers"] == ["rank"]
    # a calibrated summary and metrics from before uncertainty II: the same views as before
    old = write_prediction_report(summary(old=True), tmp_path / "c.html",
                                  metrics=json.loads(_metrics(tmp_path).read_text()))  # fmt: skip
    r = probe(exe, old, 1000, tmp_path)
    assert r["ready"] and not r["errors"] and r["layers"] == ["conf", "flag", "gene", "rank"]
    assert r["risk_lines"] == 0
    assert_fits(r, 1000, "the prediction report of an older summary")
