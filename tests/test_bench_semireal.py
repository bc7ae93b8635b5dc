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
