"""Per-batch control normalisation of morphology: hand values, the model option, clear errors."""

from __future__ import annotations

import dataclasses

import anndata as ad
import numpy as np
import pytest

from conftest import SMALL, fast, tiny_pair
from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig
from phenoseq.data.normalize import control_standardize
from phenoseq.errors import InputError
from phenoseq.model import train_model


def test_control_standardize_hand_values():
    # batch a: controls 1 and 3 -> mean 2, std 1; batch b: controls 10 and 14 -> mean 12, std 2
    x = np.array([[1.0], [3.0], [5.0], [10.0], [14.0], [16.0]])
    batch = np.array(["a", "a", "a", "b", "b", "b"])
    ctrl = np.array([True, True, False, True, True, False])
    out = control_standardize(x, batch, ctrl, fallback_std=np.ones(1))
    np.testing.assert_allclose(out.ravel(), [-1, 1, 3, -1, 1, 2])
    # a constant feature among the controls falls back to the given scale
    out = control_standardize(
        np.array([[2.0], [2.0], [6.0]]), np.zeros(3), ctrl[:3], np.full(1, 4.0)
    )
    np.testing.assert_allclose(out.ravel(), [0, 0, 1])
    with pytest.raises(InputError, match="batch 'b' has 0 'DMSO' cell"):
        control_standardize(x, batch, np.array([1, 1, 0, 0, 0, 0], bool), np.ones(1),
                            "batch", "DMSO")  # fmt: skip


def test_model_normalises_each_replicate_against_its_controls(tmp_path):
    morph, expr = tiny_pair(n_treatments=3, n_reps=3, n_cells=8, n_feat=5, n_genes=7)
    # a technical offset per replicate: removed by per-batch normalisation
    offset = morph.obs["Replicate"].astype(int).to_numpy()[:, None] * 10.0
    morph.X = morph.X + offset.astype(np.float32)
    m, e = tmp_path / "m.h5ad", tmp_path / "e.h5ad"
    morph.write_h5ad(m)
    expr.write_h5ad(e)
    inputs = InputConfig(m, e, control="DMSO", split=SplitConfig("replicate", test=("3",)))
    cfg = dataclasses.replace(SMALL, batch_key="auto")
    model = train_model(inputs, tmp_path / "model", cfg, fast(), progress=False)
    assert model.registry.batch_key == "Replicate"
    test = morph[morph.obs["Replicate"] == "3"].copy()
    z = model.normalize_features(test)
    ctrl = (test.obs["Treatment"] == "DMSO").to_numpy()
    np.testing.assert_allclose(z[ctrl].mean(axis=0), 0, atol=1e-5)  # its own controls at 0
    gen = model.generate(test, n_cells=3, n_steps=2, progress=False, set_size=2)
    assert gen.uns["phenoseq"]["set_size"] == 2
    # new data without controls in its batch cannot be normalised: a clear error
    with pytest.raises(InputError, match="per-batch normalisation"):
        model.generate(test[~ctrl].copy(), n_cells=3, n_steps=2, progress=False)
    with pytest.raises(InputError, match="no 'Replicate' column"):
        model.normalize_features(ad.AnnData(test.X, var=test.var))
    # asking for a column that does not exist is refused at training time
    bad = dataclasses.replace(SMALL, batch_key="Plate")
    with pytest.raises(InputError, match="--batch-key Plate"):
        train_model(inputs, tmp_path / "m2", bad, fast(), progress=False)
    assert not (tmp_path / "m2").exists()
