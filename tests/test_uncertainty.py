"""Uncertainty: conformal coverage on exchangeable data, confidence, summary layout, CLI."""

from __future__ import annotations

import json
import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from phenoseq.cli import main
from phenoseq.demo import run_demo
from phenoseq.errors import InputError
from phenoseq.uncertainty import (
    Calibration,
    auroc,
    confidence,
    conformal_quantile,
    coverage,
    parse_levels,
)
from test_demo import tiny


def test_conformal_quantile_is_the_finite_sample_rank():
    s = np.arange(1, 10.0)  # n = 9
    assert conformal_quantile(s, 0.5) == 5.0  # ceil(10 * 0.5) = 5th smallest
    assert conformal_quantile(s, 0.8) == 8.0
    assert conformal_quantile(s, 0.95) == np.inf  # ceil(9.5) = 10 > n


def test_split_conformal_coverage_is_the_exact_finite_sample_value():
    """Over many calibration/test splits of exchangeable scores the mean coverage of a new
    point is exactly ``ceil((n + 1) level) / (n + 1)`` (continuous scores): checked within 3
    standard errors of the Monte-Carlo mean. The finite-sample correction it detects is 0.01 to
    0.03 here (n = 50); a naive ``np.quantile(scores, level)`` misses the exact value by 10 to
    60 standard errors, ``ceil(n level)`` (no +1) by 20 to 45. Scores: heteroscedastic
    heavy-tailed errors normalised by a wrong (3x too small) model spread, as the calibration
    makes them."""
    rng = np.random.default_rng(0)
    n_cal, n_test, reps = 50, 20, 20_000
    sd_model = rng.uniform(0.5, 2.0, (reps, n_cal + n_test))
    y = rng.standard_t(5, (reps, n_cal + n_test)) * sd_model * 3.0
    scores = np.abs(y) / sd_model
    for level in (0.5, 0.8, 0.9, 0.95):
        q = np.array([conformal_quantile(row[:n_cal], level) for row in scores])
        covered = np.abs(y[:, n_cal:]) <= q[:, None] * sd_model[:, n_cal:]
        per_split = covered.mean(axis=1)  # splits are independent; test points within one are not
        mean, se = per_split.mean(), per_split.std(ddof=1) / np.sqrt(reps)
        exact = math.ceil((n_cal + 1) * level) / (n_cal + 1)
        assert abs(mean - exact) <= 3 * se, (level, mean, exact, se)


@pytest.mark.parametrize("level", [0.8, 0.9])
def test_per_gene_multipliers_cover_every_gene(level):
    """Draws whose spread understates the error by a different factor per gene (1x to 6x):
    one multiplier pooled over genes covers on average but not gene by gene; per-gene
    multipliers from the same 30 calibration groups cover every gene near the nominal rate."""
    from phenoseq.uncertainty import _interval, _per_gene, _scores

    rng = np.random.default_rng(1)
    n_genes, k, reps = 6, 10, 300
    factor = np.linspace(1.0, 6.0, n_genes)

    def groups(n):
        values = rng.normal(size=(n, k, n_genes))  # draws: spread 1 around 0
        truth = rng.normal(size=(n, n_genes)) * factor  # real pseudo-bulks
        return values, truth

    pooled_hits, gene_hits = np.zeros(n_genes), np.zeros(n_genes)
    for _ in range(reps):
        cal_v, cal_y = groups(30)
        s = _scores(cal_v, cal_y, 0.0)
        test_v, test_y = groups(1)
        for q, hits in ((conformal_quantile(s, level), pooled_hits),
                        (np.asarray(_per_gene(s, level)), gene_hits)):  # fmt: skip
            lo, hi = _interval(test_v, level, q, 0.0)
            hits += ((test_y >= lo) & (test_y <= hi))[0]
    per_gene, pooled = gene_hits / reps, pooled_hits / reps
    assert np.all(np.abs(per_gene - level) < 0.07), per_gene
    assert pooled[0] > level + 0.08 and pooled[-1] < level - 0.1  # pooled misses gene by gene
    assert _per_gene(np.ones((10, 3)), 0.95) is None  # 10 groups are too few for 95%


def test_confidence_is_a_conformal_p_value_and_auroc_matches_sklearn():
    ref = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(confidence(np.array([0.5, 2.0, 10.0]), ref), [1.0, 0.8, 0.2])
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, 30), rng.normal(0, 1, 40)
    want = roc_auc_score(np.r_[np.ones(30), np.zeros(40)], np.r_[pos, neg])
    assert auroc(pos, neg) == pytest.approx(want)


def test_coverage_counts_group_gene_pairs():
    s = ad.AnnData(np.zeros((2, 3), np.float32), obs=pd.DataFrame(index=["a", "b"]),
                   var=pd.DataFrame(index=["g1", "g2", "g3"]))  # fmt: skip
    s.layers["lower_0.8"] = -np.ones((2, 3), np.float32)
    s.layers["upper_0.8"] = np.ones((2, 3), np.float32)
    s.uns["phenoseq"] = {"levels": [0.8]}
    truth = pd.DataFrame([[0, 2, 0], [0, 0, 0], [9, 9, 9]], index=["a", "b", "z"],
                         columns=["g1", "g2", "g3"])  # fmt: skip
    got = coverage(s, truth)["0.8"]
    assert got == {"coverage": 5 / 6, "mean_width": 2.0, "n_groups": 2}


def test_parse_levels():
    assert parse_levels("0.8, 0.9") == (0.8, 0.9)
    with pytest.raises(InputError, match="strictly between"):
        parse_levels("0.8,1.2")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("unc") / "demo"
    run_demo(out, tiny(), progress=False)
    return out


def test_calibrate_then_generate_summary(run, tmp_path, capsys):
    args = ["generate", "--model", str(run / "model"), "--morphology",
            str(run / "heldout_morphology.h5ad"), "--out", str(tmp_path / "g.h5ad"),
            "--n-cells", "4", "--steps", "3", "--n-draws", "4",
            "--cells-per-draw", "3"]  # fmt: skip
    main([*args, "--summary", str(tmp_path / "raw.h5ad")])  # not calibrated yet
    assert "not calibrated" in capsys.readouterr().err
    raw = ad.read_h5ad(tmp_path / "raw.h5ad")
    assert "confidence" not in raw.obs and raw.uns["phenoseq"]["intervals"].startswith("raw")
    main(["calibrate", "--model", str(run / "model"), "--n-draws", "4", "--cells-per-draw", "3",
          "--levels", "0.5,0.8,0.9,0.95"])  # fmt: skip
    cal = Calibration.load(run / "model")
    assert cal.n_groups >= 5 and len(cal.q_bulk) == 4
    assert np.all(np.diff(cal.q_bulk) >= 0)  # wider intervals for higher levels
    main([*args, "--summary", str(tmp_path / "s.h5ad")])
    s = ad.read_h5ad(tmp_path / "s.h5ad")
    held = ad.read_h5ad(run / "heldout_morphology.h5ad")
    assert s.n_obs == held.obs["Sample_ID"].nunique()
    for lv in ("0.5", "0.8", "0.9", "0.95"):
        lo, hi = s.layers[f"lower_{lv}"], s.layers[f"upper_{lv}"]
        assert (lo <= s.layers["mean"]).all() and (s.layers["mean"] <= hi).all()
        assert f"delta_lower_{lv}" in s.layers
    assert ((s.obs["confidence"] > 0) & (s.obs["confidence"] <= 1)).all()
    assert s.obs["ood_flag"].dtype == bool
    widths = [s.obs[f"mean_width_{lv}"].mean() for lv in ("0.5", "0.8", "0.9", "0.95")]
    assert widths == sorted(widths)
    ctrl = s.obs["control_group"]
    assert np.isnan(s.layers["delta_mean"][(ctrl == "").to_numpy()]).all()
    assert json.loads((run / "model" / "calibration.json").read_text())["levels"][0] == 0.5
    other = [a if a != str(tmp_path / "g.h5ad") else str(tmp_path / "g2.h5ad") for a in args]
    with pytest.raises(SystemExit):  # uncalibrated level: refused before anything is written
        main([*other, "--summary", str(tmp_path / "x.h5ad"), "--levels", "0.7"])
    assert not (tmp_path / "x.h5ad").exists() and not (tmp_path / "g2.h5ad").exists()
    main([*args, "--summary", str(tmp_path / "s2.h5ad"), "--n-draws", "5"])
    assert "calibrated with 4 draws x 3 cells" in capsys.readouterr().err


def _summary(conf, width, flag):
    n = len(conf)
    obs = pd.DataFrame({"confidence": conf, "ood_flag": flag, "mean_width_0.9": width,
                        "Metadata_Well": [f"A{i:02d}" for i in range(n)]},
                       index=[f"g{i}" for i in range(n)])  # fmt: skip
    s = ad.AnnData(np.zeros((n, 2), np.float32), obs=obs)
    s.uns["phenoseq"] = {"levels": [0.5, 0.9]}
    return s


def test_suggest_puts_flagged_then_uncertain_groups_first(tmp_path):
    from phenoseq.uncertainty import suggest

    s = _summary([0.9, 0.02, 0.85, 0.1, 0.8], [1.0, 1.0, 3.0, 2.5, 0.5],
                 [False, True, False, False, False])  # fmt: skip
    t = suggest(s, 3)
    assert t["group"].tolist() == ["g1", "g3", "g2"]  # OOD; low confidence + wide; widest
    assert t["rank"].tolist() == [1, 2, 3] and "Metadata_Well" in t
    assert t["reason"].iloc[0].startswith("unlike the training data")
    s.write_h5ad(tmp_path / "s.h5ad")
    main(["suggest", "--summary", str(tmp_path / "s.h5ad"), "--budget", "2",
          "--out", str(tmp_path / "pick.tsv")])  # fmt: skip
    assert pd.read_csv(tmp_path / "pick.tsv", sep="\t")["group"].tolist() == ["g1", "g3"]
    with pytest.raises(SystemExit):
        main(["suggest", "--summary", str(tmp_path / "s.h5ad"), "--budget", "0",
              "--out", str(tmp_path / "bad.tsv")])  # fmt: skip
    assert not (tmp_path / "bad.tsv").exists()


def test_evaluate_scores_the_summary_and_the_report_draws_it(run, tmp_path, capsys):
    gen = ["generate", "--model", str(run / "model"), "--morphology",
           str(run / "heldout_morphology.h5ad"), "--out", str(tmp_path / "g.h5ad"),
           "--n-cells", "6", "--steps", "3", "--n-draws", "4", "--cells-per-draw", "3",
           "--summary", str(tmp_path / "s.h5ad")]  # fmt: skip
    if not (run / "model" / "calibration.json").exists():
        main(["calibrate", "--model", str(run / "model"), "--n-draws", "4",
              "--cells-per-draw", "3"])  # fmt: skip
    main(gen)
    main(["evaluate", "--model", str(run / "model"), "--generated", str(tmp_path / "g.h5ad"),
          "--expression", str(run / "heldout_expression.h5ad"), "--morphology",
          str(run / "heldout_morphology.h5ad"), "--summary", str(tmp_path / "s.h5ad"),
          "--out", str(tmp_path / "m.json"), "--quiet"])  # fmt: skip
    assert "interval coverage pseudobulk/seen" in capsys.readouterr().out
    unc = json.loads((tmp_path / "m.json").read_text())["uncertainty"]
    cov = unc["coverage"]["pseudobulk/seen"]
    assert set(cov) == {"0.5", "0.8", "0.9", "0.95"}
    assert all(0 <= c["coverage"] <= 1 for c in cov.values())
    assert 0 <= unc["ood_auroc"] <= 1
    main(["report", "--metrics", str(tmp_path / "m.json"), "--out", str(tmp_path / "r.html"),
          "--figures", str(tmp_path / "fig")])  # fmt: skip
    assert "id='reliability'" in (tmp_path / "r.html").read_text()
    assert (tmp_path / "fig" / "reliability.png").exists()
