"""Uncertainty: conformal coverage on exchangeable data, confidence, summary layout, CLI."""

from __future__ import annotations

import json
import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import SMALL, fast, write_pair
from phenoseq.cli import main
from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig
from phenoseq.demo import run_demo
from phenoseq.errors import InputError
from phenoseq.evaluate.uncertainty import auroc, coverage, score_summary
from phenoseq.model import PhenoSeqModel, train_model
from phenoseq.uncertainty import (
    Calibration,
    confidence,
    conformal_quantile,
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
    from phenoseq.uncertainty import interval, nonconformity, per_gene_quantiles

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
        s = nonconformity(cal_v, cal_y, 0.0)
        test_v, test_y = groups(1)
        for q, hits in ((conformal_quantile(s, level), pooled_hits),
                        (np.asarray(per_gene_quantiles(s, level)), gene_hits)):  # fmt: skip
            lo, hi = interval(test_v, level, q, 0.0)
            hits += ((test_y >= lo) & (test_y <= hi))[0]
    per_gene, pooled = gene_hits / reps, pooled_hits / reps
    assert np.all(np.abs(per_gene - level) < 0.07), per_gene
    assert pooled[0] > level + 0.08 and pooled[-1] < level - 0.1  # pooled misses gene by gene
    assert per_gene_quantiles(np.ones((10, 3)), 0.95) is None  # 10 groups are too few for 95%


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
    (run / "model" / "calibration.json").unlink()  # the demo calibrates: start uncalibrated
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
    assert t["group"].tolist() == ["g1", "g2", "g3"]  # OOD first; then by expected error
    assert t["rank"].tolist() == [1, 2, 3] and "Metadata_Well" in t
    assert t["reason"].iloc[0].startswith("unlike the training data")
    np.testing.assert_allclose(t["priority"], [0.25, 2.25, 1.5625])  # (width / 2)^2
    s.write_h5ad(tmp_path / "s.h5ad")
    main(["suggest", "--summary", str(tmp_path / "s.h5ad"), "--budget", "2",
          "--out", str(tmp_path / "pick.tsv")])  # fmt: skip
    assert pd.read_csv(tmp_path / "pick.tsv", sep="\t")["group"].tolist() == ["g1", "g2"]
    with pytest.raises(SystemExit):
        main(["suggest", "--summary", str(tmp_path / "s.h5ad"), "--budget", "0",
              "--out", str(tmp_path / "bad.tsv")])  # fmt: skip
    assert not (tmp_path / "bad.tsv").exists()


def test_suggest_counts_every_well_a_treatment_measurement_informs():
    """Expected error reduction: one well of a treatment measures it for all its wells, so a
    treatment in three moderately uncertain wells beats one very uncertain well, and is picked
    once (by its most uncertain well)."""
    from phenoseq.uncertainty import suggest

    s = _summary([0.5] * 5, [2.0, 2.0, 2.2, 3.0, 0.5], [False] * 5)
    s.obs["uncertainty"] = [1.0, 1.0, 1.1, 1.5, 0.25]
    s.obs["Treatment"] = ["A", "A", "A", "B", "C"]
    s.uns["phenoseq"]["label_key"] = "Treatment"
    t = suggest(s, 3)
    assert t["group"].tolist() == ["g2", "g3", "g4"]  # A (3 wells), then B, then C
    np.testing.assert_allclose(t["priority"], [1 + 1 + 1.21, 2.25, 0.0625])
    assert t["wells_informed"].tolist() == [3, 1, 1] and "informs 3 wells" in t["reason"][0]
    s.uns["phenoseq"]["control"] = "A"  # control wells are the reference: never suggested
    assert suggest(s, 3)["group"].tolist() == ["g3", "g4"]


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


def test_end_to_end_coverage_recomputed_from_the_summary_file(tmp_path):
    """Tiny model -> ``phenoseq calibrate`` -> ``phenoseq generate --summary`` (with the cells,
    same seed, ``--n-cells`` = draws x cells per draw, so the written cells are the summary's
    draws). From the files alone, independently of phenoseq.uncertainty: the intervals are
    the calibration's multipliers (per gene, or pooled where the groups are too few) times
    the recorded scale (at least ``sd + eps`` of the draws: the mean head's variance widens it)
    around the draws' mean, for the pseudo-bulk and the delta vs the
    control; the coverage recomputed against real pseudo-bulks computed here (normalize_total
    1e4 + log1p of the counts, mean per group) equals what ``score_summary`` and
    ``phenoseq evaluate --summary`` report."""
    m, e = write_pair(tmp_path, n_treatments=6, n_reps=3, n_cells=8, n_genes=5)
    split = SplitConfig("replicate", calib=("2",), test=("3",))
    model = tmp_path / "model"
    train_model(InputConfig(m, e, control="DMSO", split=split), model, SMALL, fast(),
                progress=False)  # fmt: skip
    k, n, levels = 4, 3, ("0.5", "0.8", "0.9")
    draws = ["--n-draws", str(k), "--cells-per-draw", str(n)]
    main(["calibrate", "--model", str(model), *draws, "--levels", ",".join(levels)])
    cal = json.loads((model / "calibration.json").read_text())
    assert cal["n_groups"] == 6 and cal["levels"] == [0.5, 0.8, 0.9]
    # 6 calibration groups: per-gene multipliers at 0.5 and 0.8, too few for 0.9 (pooled)
    assert cal["q_bulk_gene"][0] is not None and cal["q_bulk_gene"][1] is not None
    assert cal["q_bulk_gene"][2] is None and cal["q_delta_gene"][2] is None
    morph, expr = ad.read_h5ad(m), ad.read_h5ad(e)
    held_m, held_e = tmp_path / "held_m.h5ad", tmp_path / "held_e.h5ad"
    morph[morph.obs["Replicate"] == "3"].copy().write_h5ad(held_m)
    expr = expr[expr.obs["Replicate"] == "3"].copy()
    expr.write_h5ad(held_e)
    main(["generate", "--model", str(model), "--morphology", str(held_m), "--out",
          str(tmp_path / "g.h5ad"), "--n-cells", str(k * n), "--steps", "3", *draws,
          "--levels", ",".join(levels), "--summary", str(tmp_path / "s.h5ad")])  # fmt: skip
    s, g = ad.read_h5ad(tmp_path / "s.h5ad"), ad.read_h5ad(tmp_path / "g.h5ad")
    groups = s.obs_names.tolist()
    assert groups == sorted(f"{t}_R3" for t in ("DMSO", "T1", "T2", "T3", "T4", "T5"))
    assert s.uns["phenoseq"]["intervals"] == "conformal"

    def log_norm(x: np.ndarray) -> np.ndarray:
        return np.log1p(x / x.sum(axis=1, keepdims=True) * 1e4)

    counts = expr.X.toarray() if hasattr(expr.X, "toarray") else np.asarray(expr.X)
    real = pd.DataFrame(log_norm(counts.astype(np.float64)), columns=expr.var_names)
    real = real.groupby(expr.obs["Sample_ID"].to_numpy()).mean().loc[groups]
    # the draws: each group's K x N written cells, one pseudo-bulk per N
    generated = g.X.toarray().astype(np.float64)
    np.testing.assert_allclose(g.layers["log1p"].toarray(), log_norm(generated), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    of_group = g.obs["phenoseq_group"].to_numpy()
    values = np.stack([g.layers["log1p"][of_group == name].toarray().astype(np.float64)
                       .reshape(k, n, -1).mean(axis=1) for name in groups])  # fmt: skip
    ctrl = s.obs["control_group"]
    have = [name for name in groups if ctrl[name] and ctrl[name] != name]
    assert len(have) == 5 and set(ctrl[have]) == {"DMSO_R3"}
    deltas = np.stack([values[groups.index(h)] - values[groups.index(ctrl[h])] for h in have])
    real_delta = real.loc[have].to_numpy() - real.loc[ctrl[have].to_numpy()].to_numpy()
    rows = [groups.index(h) for h in have]
    np.testing.assert_allclose(s.layers["mean"], values.mean(axis=1), rtol=1e-5, atol=1e-6)
    mine: dict[str, dict[str, float]] = {"pseudobulk/seen": {}, "delta/seen": {}}
    for i, lv in enumerate(levels):
        for key, kind, v, truth, prefix, sel in (
            ("pseudobulk/seen", "bulk", values, real.to_numpy(), "", slice(None)),
            ("delta/seen", "delta", deltas, real_delta, "delta_", rows),
        ):
            per_gene = cal[f"q_{kind}_gene"][i]
            q = np.asarray(per_gene) if per_gene is not None else cal[f"q_{kind}"][i]
            eps = cal["eps" if kind == "bulk" else "eps_delta"]
            # the scale: the draws' SD + eps, widened by the mean head's variance (>= 0)
            scale = s.layers[f"{prefix}scale"][sel]
            assert (scale >= v.std(axis=1, ddof=1) + eps - 1e-5).all()
            centre, half = v.mean(axis=1), q * scale
            lo, hi = s.layers[f"{prefix}lower_{lv}"][sel], s.layers[f"{prefix}upper_{lv}"][sel]
            np.testing.assert_allclose(lo, centre - half, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(hi, centre + half, rtol=1e-5, atol=1e-5)
            mine[key][lv] = float(((truth >= lo) & (truth <= hi)).mean())
    reported = score_summary(PhenoSeqModel.load(model), s, expr)["coverage"]
    assert set(reported) == set(mine)  # every treatment was seen in training: no unseen subset
    for key, cov in mine.items():
        assert {lv: c["coverage"] for lv, c in reported[key].items()} == cov, key
    main(["evaluate", "--model", str(model), "--generated", str(tmp_path / "g.h5ad"),
          "--expression", str(held_e), "--morphology", str(held_m), "--summary",
          str(tmp_path / "s.h5ad"), "--out", str(tmp_path / "m.json"), "--quiet"])  # fmt: skip
    cli = json.loads((tmp_path / "m.json").read_text())["uncertainty"]["coverage"]
    assert {key: {lv: c["coverage"] for lv, c in cov.items()} for key, cov in cli.items()} == mine
