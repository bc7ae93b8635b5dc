"""--device / --precision: resolution, clear errors, and bf16 autocast training on the CPU."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import torch

from conftest import SMALL, fast, write_pair
from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig
from phenoseq.errors import InputError
from phenoseq.model import train_model
from phenoseq.train import autocast, resolve_device


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(InputError, match="unknown --device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="sees no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(InputError, match="unknown --precision"):
        autocast(torch.device("cpu"), "fp16")
    assert not autocast(torch.device("cpu"), "auto")._enabled  # fp32 on CPUs by default


def test_bf16_autocast_trains(tmp_path):
    torch.set_num_threads(1)
    m, e = write_pair(tmp_path, n_treatments=3, n_reps=3, n_cells=8, n_feat=5, n_genes=7)
    inp = InputConfig(m, e, control="DMSO", split=SplitConfig("replicate", test=("3",)))
    model = train_model(inp, tmp_path / "model", SMALL, fast(precision="bf16", device="cpu"),
                        progress=False)  # fmt: skip
    losses = [r["loss"] for ph in ("autoencoder", "diffusion") for r in model.history[ph]]
    assert losses and np.isfinite(losses).all()
    assert all(p.dtype == torch.float32 for p in model.diffusion.parameters())  # weights stay fp32
    gen = model.generate(ad.read_h5ad(m)[:16], n_cells=3, n_steps=2, progress=False)
    assert np.isfinite(gen.layers["log1p"]).all()
