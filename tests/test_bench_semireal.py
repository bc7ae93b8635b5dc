"""The semi-real benchmark's data: real counts, simulated morphology from disjoint cells."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import anndata as ad
import numpy as np

from conftest import shared_path


def _bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "semireal.py"
    spec = importlib.util.spec_from_file_location("semireal", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_semireal_modalities_come_from_disjoint_halves(tmp_path):
    shared_path("glioblastoma-panobinostat-lemur", "glioblastoma_example_data.h5ad")
    m, e = _bench().build(tmp_path, seed=0)
    morph, expr = ad.read_h5ad(m), ad.read_h5ad(e)
    assert not set(morph.obs_names) & set(expr.obs_names)  # no cell in both modalities
    assert len(morph) + len(expr) == 5000 and morph.n_vars == 40
    per_group = expr.obs.groupby(["Replicate", "Treatment"], observed=True).size()
    assert len(per_group) == 10 and set(per_group) == {250}
    x = expr.X.toarray() if hasattr(expr.X, "toarray") else np.asarray(expr.X)
    assert np.all(x == np.round(x)) and x.sum() > 0  # real raw counts, untouched
    # morphology carries the treatment: group means differ between conditions within a patient
    mx = np.asarray(morph.X)
    ctrl = mx[(morph.obs["Treatment"] == "DMSO").to_numpy()].mean(axis=0)
    pano = mx[(morph.obs["Treatment"] == "panobinostat").to_numpy()].mean(axis=0)
    assert np.linalg.norm(ctrl - pano) > 0.1


def test_pc9_groups_are_condition_by_random_half(tmp_path):
    """PC9 (genes x cells UMI tables, one per condition; here small synthetic ones in that
    format): groups = condition x random half, the halves play the replicates, the genes are
    those of both files, each group's morphology comes from cells disjoint from its expression."""
    import pandas as pd

    rng = np.random.default_rng(0)
    for name, n, genes in (("Day11_control", 60, 30), ("Day11_Erlotinib", 80, 32)):
        t = pd.DataFrame(rng.poisson(2.0, size=(genes, n)), index=[f"G{j}" for j in range(genes)],
                         columns=[f"BC{i:04d}" for i in range(n)])  # fmt: skip
        t.index.name = "GENE"
        t.to_csv(tmp_path / f"{name}.txt.gz", sep="\t")
    bench = _bench()
    bench.PC9 = tmp_path
    m, e = bench.build(tmp_path / "out", seed=0, dataset="pc9")
    morph, expr = ad.read_h5ad(m), ad.read_h5ad(e)
    assert not set(morph.obs_names) & set(expr.obs_names) and len(morph) + len(expr) == 140
    assert expr.n_vars == 30  # genes present in both files
    groups = expr.obs.groupby(["Treatment", "Replicate"], observed=True).size()
    assert set(groups.index) == {(t, h) for t in ("DMSO", "erlotinib") for h in ("A", "B")}
    assert set(groups) == {15, 20}  # each condition halved into A / B, each group halved again
    o = expr.obs.astype(str)
    assert (o["Sample_ID"] == o["Treatment"] + "_" + o["Replicate"]).all()
    x = expr.X.toarray() if hasattr(expr.X, "toarray") else np.asarray(expr.X)
    assert np.all(x == np.round(x))
