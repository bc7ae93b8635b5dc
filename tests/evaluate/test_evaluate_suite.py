"""Baselines and the scoring suite on synthetic populations with a known answer."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from phenoseq.errors import InputError
from phenoseq.evaluate import baselines as B
from phenoseq.evaluate.cells import Cells
from phenoseq.evaluate.retrieval import chance_average_precision
from phenoseq.evaluate.space import fit_space
from phenoseq.evaluate.suite import BASELINES, INPUTS, METRICS, EvaluationData, score

N_GENES, N_FEAT = 60, 6


def population(rng, means: dict[str, np.ndarray], labels: dict[str, str], n: int,
               sd: float = 0.5) -> Cells:  # fmt: skip
    groups = np.repeat(list(means), n)
    x = np.concatenate([rng.normal(size=(n, len(m))) * sd + m for m in means.values()])
    return Cells(x, groups, [labels[g] for g in groups])


@pytest.fixture(scope="module")
def world():
    """Treatments shift expression and morphology through one shared latent effect."""
    rng = np.random.default_rng(0)
    labels = ["DMSO"] + [f"T{i}" for i in range(7)]
    effect = {lab: rng.normal(size=3) * (0 if lab == "DMSO" else 1.5) for lab in labels}
    to_expr, to_morph = rng.normal(size=(3, N_GENES)), rng.normal(size=(3, N_FEAT))
    base = rng.uniform(1, 3, N_GENES)

    def groups(rep: str, labs: list[str]):
        g = {f"{lab}_R{rep}": lab for lab in labs}
        e = {k: base + effect[v] @ to_expr for k, v in g.items()}
        m = {k: effect[v] @ to_morph for k, v in g.items()}
        return g, e, m

    train_labels, test_labels = labels[:6], labels  # T5, T6 unseen
    tr = [groups(r, train_labels) for r in ("1", "2")]
    te_g, te_e, te_m = groups("3", test_labels)
    lab = {k: v for g, _, _ in tr for k, v in g.items()} | te_g
    e_train = population(rng, {k: v for _, e, _ in tr for k, v in e.items()}, lab, 40)
    m_train = population(rng, {k: v for _, _, m in tr for k, v in m.items()}, lab, 30)
    data = EvaluationData(
        expr_train=e_train, morph_train=m_train,
        expr_test=population(rng, te_e, lab, 40), morph_test=population(rng, te_m, lab, 30),
        genes=[f"G{i}" for i in range(N_GENES)], control="DMSO",
    )  # fmt: skip
    perfect = population(rng, te_e, lab, 60)  # fresh draws from the true distributions
    return data, perfect


def test_baselines_use_training_data_only(world):
    data, _ = world
    rng = np.random.default_rng(1)
    labels = data.test_labels()
    tm = B.train_mean(data.expr_train, labels, 10, rng)
    assert len(tm.x) == 10 * len(labels)
    lk = B.lookup(data.expr_train, labels, 10, rng)
    assert set(lk.labels) == set(labels) - {"T5", "T6"}  # unseen treatments get no cells
    # every looked-up row is a training row of the same treatment
    train = data.expr_train
    rows = {tuple(r): lab for r, lab in zip(train.x.round(9), train.labels, strict=True)}
    assert all(rows[tuple(r)] == lab for r, lab in zip(lk.x.round(9), lk.labels, strict=True))
    ng = B.nearest_group(train, data.morph_train, data.morph_test, labels, 10, rng)
    seen = ng.take(np.isin(ng.labels, ["T1", "T2", "T3"]))
    # with well-separated morphology the nearest training group is the same treatment
    assert all(rows[tuple(r)] == lab for r, lab in zip(seen.x.round(9), seen.labels, strict=True))


def test_ridge_recovers_a_linear_map_and_residual_covariance():
    rng = np.random.default_rng(2)
    n_groups, n_cells = 40, 50
    w = rng.normal(size=(4, 12))
    feats = {f"g{i}": rng.normal(size=4) for i in range(n_groups + 2)}
    labels = {g: g for g in feats}
    morph = population(rng, {g: f for g, f in list(feats.items())[:n_groups]}, labels, 20, 0.05)
    expr = population(rng, {g: f @ w for g, f in list(feats.items())[:n_groups]}, labels, n_cells)
    test_m = population(rng, {g: f for g, f in list(feats.items())[n_groups:]}, labels, 20, 0.05)
    test_labels = pd.Series({g: g for g in list(feats)[n_groups:]})
    space = fit_space(expr.x, n_pcs=12)
    out = B.ridge(expr, morph, test_m, test_labels, space, 4000, rng)
    for g in test_labels.index:
        pred = out.group(g)
        np.testing.assert_allclose(pred.mean(axis=0), feats[g] @ w, atol=0.1)
        # cells scatter with the within-group covariance of training cells (0.25 I here)
        assert np.diag(np.cov(pred, rowvar=False)).mean() == pytest.approx(0.25, rel=0.1)


def test_score_schema_and_ordering(world):
    data, perfect = world
    rng = np.random.default_rng(3)
    space = fit_space(data.expr_train.x, n_pcs=10)
    labels = data.test_labels()
    methods = {
        "model": perfect,
        "train_mean": B.train_mean(data.expr_train, labels, 60, rng),
        "lookup": B.lookup(data.expr_train, labels, 60, rng),
    }
    ev = score(data, methods, space, seed=0, k=10, n_retrieval_cells=20)
    m = ev.metrics
    assert set(m["baselines"]) == {"train_mean", "lookup"}
    assert set(m["model"]) == set(METRICS) == set(m["ceilings"]["split_half"])
    for metric in METRICS:
        assert set(m["model"][metric]) >= {"seen", "unseen", "all"}
    model_ed = m["model"]["energy_distance"]
    ceiling_ed = m["ceilings"]["split_half"]["energy_distance"]
    tm_ed = m["baselines"]["train_mean"]["energy_distance"]
    for s in ("seen", "unseen"):
        # draws from the true distribution sit at the noise floor; the train mean far above it
        assert abs(model_ed[s]["value"]) < 0.2 * tm_ed[s]["value"]
        assert abs(ceiling_ed[s]["value"]) < 0.2 * tm_ed[s]["value"]
        assert m["model"]["pearson_delta"][s]["value"] > 0.95
        assert m["model"]["r2_per_gene_median"][s]["value"] > 0.8
    assert m["model"]["energy_distance"]["unseen"]["n"] == 2
    assert np.isnan(m["baselines"]["lookup"]["energy_distance"]["unseen"]["value"])
    # the control group has no delta / DEG scores, but distribution scores
    assert np.isnan(m["model"]["pearson_delta"]["per_group"]["DMSO_R3"])
    assert np.isfinite(m["model"]["energy_distance"]["per_group"]["DMSO_R3"])
    ti = m["treatment_identification"]
    assert set(ti["balanced_accuracy"]) == set(INPUTS)
    assert ti["balanced_accuracy"]["imaging_real"] > 0.5
    assert ti["unseen_retrieval_map"]["imaging_real"] == pytest.approx(1.0, abs=0.2)
    assert m["retrieval_map"]["model"]["all"] > m["retrieval_map"]["train_mean"]["all"]
    assert ev.plots["r2_model"].shape == (N_GENES,)
    assert ev.plots["confusion_imaging"].shape == (6, 6)
    # chance lines: 6 training classes; random rankings of the real cells' sample (20 per group)
    assert ti["chance_balanced_accuracy"] == pytest.approx(1 / 6)
    assert ti["chance_unseen_retrieval_map"] == pytest.approx(chance_average_precision(29, 59))
    assert m["retrieval_chance"]["all"] == pytest.approx(chance_average_precision(19, 159))
    assert m["retrieval_map"]["real"]["all"] > 2 * m["retrieval_chance"]["all"]


def test_score_keeps_each_treatments_top_fold_changes_with_gene_names(world):
    data, perfect = world
    space = fit_space(data.expr_train.x, n_pcs=10)
    p = score(data, {"model": perfect}, space, seed=0, k=10).plots
    groups = p["fold_change_groups"].tolist()
    assert groups == sorted(set(data.test_labels().index) - {"DMSO_R3"})  # no control row
    assert p["fold_change_genes"].shape == p["fold_change_real"].shape == (7, 10)
    assert set(p["fold_change_genes"].ravel()) <= set(data.genes)
    real = data.expr_test
    control = real.x[real.labels == "DMSO"].mean(axis=0)
    for i, g in enumerate(groups):  # the real changes, largest first, of the named genes
        delta = real.group(g).mean(axis=0) - control
        top = np.argsort(-np.abs(delta))[:10]
        assert p["fold_change_genes"][i].tolist() == [data.genes[j] for j in top]
        np.testing.assert_allclose(p["fold_change_real"][i], delta[top])
    # draws from the true distributions predict the real changes
    assert np.corrcoef(p["fold_change_real"].ravel(), p["fold_change_model"].ravel())[0, 1] > 0.9


def test_score_is_deterministic(world):
    data, perfect = world
    space = fit_space(data.expr_train.x, n_pcs=10)
    a = score(data, {"model": perfect}, space, seed=5, k=10).metrics
    b = score(data, {"model": perfect}, space, seed=5, k=10).metrics
    assert a["model"]["energy_distance"] == b["model"]["energy_distance"]
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def test_baseline_names_are_the_documented_ones():
    from pathlib import Path

    assert BASELINES == (
        "train_mean",
        "lookup",
        "nearest_group",
        "ridge",
        "unconditional",
        "recognise_copy",
        "posterior_lookup",
        "kernel_ridge",
        "mean_head_copy",
    )
    doc = (Path(__file__).resolve().parents[2] / "docs" / "evaluation.md").read_text()
    assert all(f"| `{name}` |" in doc for name in BASELINES)


def test_degenerate_groups_do_not_break_the_scores(world):
    # a held-out group whose cells are mostly identical (e.g. a treatment that empties the
    # library): the median distance is 0, the MMD bandwidth falls back to the mean distance
    data, perfect = world
    x = data.expr_test.x.copy()
    rows = np.flatnonzero(data.expr_test.groups == "T1_R3")
    x[rows[:-3]] = x[rows[0]]
    degenerate = Cells(x, data.expr_test.groups, data.expr_test.labels)
    d2 = EvaluationData(data.expr_train, data.morph_train, degenerate, data.morph_test,
                        data.genes, data.control)  # fmt: skip
    m = score(d2, {"model": perfect}, fit_space(data.expr_train.x, n_pcs=10), k=10).metrics
    assert np.isfinite(m["model"]["mmd_rbf"]["per_group"]["T1_R3"])


def test_a_baseline_that_cannot_be_fitted_is_left_out_with_a_warning(monkeypatch):
    """Two training groups (PC9's DMSO and erlotinib halves): ridge refuses them; the evaluation
    goes on without it and says why, instead of failing."""

    def refuses(inputs):
        raise InputError("ridge needs 3+ training groups, got 2.", "train on more treatments")

    registry = {
        "ridge": B.Baseline("ridge", "ridge", refuses),
        "train_mean": B.Baseline("train_mean", "train mean", lambda inputs: "cells"),
    }
    monkeypatch.setattr(B, "REGISTRY", registry)
    with pytest.warns(UserWarning, match="baseline 'ridge' left out: ridge needs 3"):
        out = B.predict_all(SimpleNamespace(generate=None))
    assert out == {"train_mean": "cells"}
