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
    """``--precision bf16`` on the CPU: the training forward passes of both phases run in
    bf16 (every Linear's output seen during training, by a global forward hook), the weights
    stay fp32, the losses are finite, and generation works; fp32 stays fp32."""
    torch.set_num_threads(1)
    m, e = write_pair(tmp_path, n_treatments=3, n_reps=3, n_cells=8, n_feat=5, n_genes=7)
    inp = InputConfig(m, e, control="DMSO", split=SplitConfig("replicate", test=("3",)))
    seen: dict[torch.nn.Module, set[torch.dtype]] = {}

    def record(module, args, output):
        if torch.is_grad_enabled() and isinstance(module, torch.nn.Linear):
            seen.setdefault(module, set()).add(output.dtype)

    def trained(precision: str):
        seen.clear()
        handle = torch.nn.modules.module.register_module_forward_hook(record)
        try:
            cfg = fast(precision=precision, device="cpu")
            model = train_model(inp, tmp_path / precision, SMALL, cfg, progress=False)
        finally:
            handle.remove()
        return model, {phase: set().union(*(seen.get(mod, set()) for mod in net.modules()))
                       for phase, net in (("autoencoder", model.autoencoder),
                                          ("diffusion", model.diffusion))}  # fmt: skip

    model, dtypes = trained("bf16")
    assert dtypes == {"autoencoder": {torch.bfloat16}, "diffusion": {torch.bfloat16}}, dtypes
    losses = [r["loss"] for ph in ("autoencoder", "diffusion") for r in model.history[ph]]
    assert losses and np.isfinite(losses).all()
    assert all(p.dtype == torch.float32 for p in model.diffusion.parameters())  # weights stay fp32
    gen = model.generate(ad.read_h5ad(m)[:16], n_cells=3, n_steps=2, progress=False)
    assert np.isfinite(gen.layers["log1p"].toarray()).all()
    _, dtypes = trained("fp32")
    assert dtypes == {"autoencoder": {torch.float32}, "diffusion": {torch.float32}}, dtypes
