"""Ablation: the diffusion without the autoencoder latent, on the same data, split and training
budget as a finished ``bench/quality.py`` seed.

    .venv/bin/python bench/no_autoencoder.py --run bench/out/quality/seed0

The autoencoder is replaced by a fixed linear one: the latent is the top ``n_latent`` principal
components of log-normalised expression of the training cells (no training), decoded by the
inverse projection to gene proportions and negative-binomial counts whose per-gene dispersion is
fitted by moments on the training cells. The diffusion, its training steps, generation and the
evaluation are unchanged. Prints one line per variant (ED seen / unseen, identification).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import anndata as ad
import numpy as np
import torch
from torch import nn

from phenoseq import _keys as K
from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig, load_paired
from phenoseq.evaluate.run import evaluate
from phenoseq.model import ModelConfig, PhenoSeqModel
from phenoseq.train import TrainConfig


class LinearLatent(nn.Module):
    """PCA of log1p expression as a parameter-free autoencoder with the model's interface."""

    def __init__(self, log1p: np.ndarray, counts: np.ndarray, n_latent: int):
        super().__init__()
        mean = log1p.mean(axis=0)
        _, _, vt = np.linalg.svd(log1p - mean, full_matrices=False)
        self.register_buffer("center", torch.from_numpy(mean.astype(np.float32)))
        self.register_buffer("components", torch.from_numpy(vt[:n_latent].T.astype(np.float32)))
        lib = counts.sum(axis=1, keepdims=True)
        mu = self._scale(self.encode(torch.from_numpy(log1p.astype(np.float32)))).numpy() * lib
        excess = ((counts - mu) ** 2 - mu).mean(axis=0)  # NB: var - mu = mu^2 / theta
        theta = (mu**2).mean(axis=0) / np.maximum(excess, 1e-6)
        self.register_buffer(
            "theta", torch.from_numpy(np.clip(theta, 1e-2, 1e4).astype(np.float32))
        )
        self.n_latent = n_latent

    def encode(self, x_log1p: torch.Tensor) -> torch.Tensor:
        return (x_log1p - self.center) @ self.components

    def _scale(self, z: torch.Tensor) -> torch.Tensor:
        expr = torch.expm1(z @ self.components.T + self.center).clamp_min(0) + 1e-8
        return expr / expr.sum(dim=-1, keepdim=True)

    def decode(self, z: torch.Tensor, library: torch.Tensor | None = None) -> dict:
        scale = self._scale(z)
        out = {"scale": scale, "theta": self.theta.expand_as(scale)}
        if library is not None:
            out["mu"] = scale * library.reshape(-1, 1)
        return out


def row(name: str, m: dict) -> dict:
    ti = m["treatment_identification"]
    return {
        "variant": name, "ed_seen": m["model"]["energy_distance"]["seen"]["value"],
        "ed_unseen": m["model"]["energy_distance"]["unseen"]["value"],
        "r_delta_seen": m["model"]["pearson_delta"]["seen"]["value"],
        "ba_generated": ti["balanced_accuracy"]["generated"], "gap_closure": ti["gap_closure"],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="A bench/quality.py seed folder.")
    ap.add_argument("--n-cells", type=int, default=100)
    args = ap.parse_args()
    ref = PhenoSeqModel.load(args.run / "model")
    tcfg = TrainConfig(**(vars(ref.train_config) | {"ae_steps": 0}))
    sim = args.run / "simulated"
    inputs = InputConfig(sim / "morphology.h5ad", sim / "expression.h5ad", control="DMSO",
                         split=SplitConfig("replicate", calib=("3",), test=("4",)))  # fmt: skip
    paired = load_paired(inputs)
    model = PhenoSeqModel.from_paired(
        paired, ModelConfig(**vars(ref.config)), tcfg, ref.registry.inputs
    )
    train = paired.expression.obs[K.ROLE].eq("train").to_numpy()
    expr = model._expression(paired.expression)
    model.autoencoder = LinearLatent(expr["log1p"][train], expr["values"][train],
                                     ref.config.n_latent)  # fmt: skip
    t0 = time.monotonic()
    model.train(paired, progress=False)
    seconds = time.monotonic() - t0
    morph = ad.read_h5ad(args.run / "heldout_morphology.h5ad")
    real = ad.read_h5ad(args.run / "heldout_expression.h5ad")
    seed = ref.train_config.seed
    gen = model.generate(morph, n_cells=args.n_cells, seed=seed, progress=False)
    rows = [
        row("autoencoder latent (default)", json.loads((args.run / "metrics.json").read_text())),
        row("PCA latent, no autoencoder", evaluate(model, gen, real, morph, seed=seed,
                                                   progress=False).metrics),
    ]  # fmt: skip
    rows[1]["train_seconds"] = seconds
    for r in rows:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
