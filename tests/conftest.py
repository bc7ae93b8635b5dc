"""Shared fixtures: tiny seeded synthetic data; real files in ../shared/data (skip if absent)."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Tiny tensors: one thread is faster (no OpenMP spin-up) and keeps results reproducible.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test when the shared folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is optional)")
    return path


def tiny_pair(
    n_treatments: int = 3,
    n_reps: int = 3,
    n_cells: int = 6,
    n_feat: int = 4,
    n_genes: int = 5,
    seed: int = 0,
) -> tuple[ad.AnnData, ad.AnnData]:
    """A tiny scGeneScope-layout pair: Sample_ID / Treatment / Replicate on both sides."""
    rng = np.random.default_rng(seed)
    rows = [(f"T{t}", str(r)) for t in range(n_treatments) for r in range(1, n_reps + 1)]
    labels = ["DMSO" if t == "T0" else t for t, _ in rows]
    obs = pd.DataFrame(
        {
            "Sample_ID": np.repeat(
                [f"{lab}_R{r}" for lab, (_, r) in zip(labels, rows, strict=True)], n_cells
            ),
            "Treatment": np.repeat(labels, n_cells),
            "Replicate": np.repeat([r for _, r in rows], n_cells),
        }
    )
    morph = ad.AnnData(
        X=rng.normal(size=(len(obs), n_feat)).astype(np.float32),
        obs=obs.set_axis([f"m{i}" for i in range(len(obs))]),
        var=pd.DataFrame(index=[f"Cells_F{j}" for j in range(n_feat)]),
    )
    expr = ad.AnnData(
        X=rng.poisson(5.0, size=(len(obs), n_genes)).astype(np.float32) + 1,
        obs=obs.set_axis([f"e{i}" for i in range(len(obs))]),
        var=pd.DataFrame(index=[f"G{j}" for j in range(n_genes)]),
    )
    return morph, expr


def write_pair(folder: Path, sparse: bool = False, **kw) -> tuple[Path, Path]:
    """:func:`tiny_pair` (``kw``) written as ``morph.h5ad`` / ``expr.h5ad`` in ``folder``
    (``sparse``: expression X as CSR)."""
    import scipy.sparse as sp

    morph, expr = tiny_pair(**kw)
    if sparse:
        expr.X = sp.csr_matrix(expr.X)
    m, e = folder / "morph.h5ad", folder / "expr.h5ad"
    morph.write_h5ad(m)
    expr.write_h5ad(e)
    return m, e


@pytest.fixture
def tiny_files(tmp_path: Path) -> tuple[Path, Path]:
    return write_pair(tmp_path)


def _small_model():
    from phenoseq.model import ModelConfig

    return ModelConfig(n_latent=4, ae_hidden=16, ae_layers=1, d_model=16, cond_layers=1,
                       n_tokens=2, width=32, depth=2, cond_heads=2)  # fmt: skip


SMALL = _small_model()


def fast(**kw):
    """A training config of a few steps, for tests that check contracts, not quality."""
    from phenoseq.train import TrainConfig

    base = dict(batch_size=16, set_size=4, ae_steps=6, max_steps=6, warmup_steps=2,
                eval_every=3, checkpoint_every=3)  # fmt: skip
    return TrainConfig(**(base | kw))
