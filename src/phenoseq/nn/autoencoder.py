"""Expression autoencoder: log1p expression -> latent z -> NB (counts) or Gaussian decoder."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

Likelihood = Literal["nb", "gaussian", "identity"]


@dataclass
class LossOutput:
    """``loss`` (scalar to minimise) and its parts, for logging."""

    loss: torch.Tensor
    reconstruction: torch.Tensor


def mlp(n_in: int, n_hidden: int, n_out: int, n_layers: int, dropout: float) -> nn.Sequential:
    """``n_layers`` hidden blocks (Linear, LayerNorm, GELU, Dropout) then a linear output."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [
            nn.Linear(width, n_hidden),
            nn.LayerNorm(n_hidden),
            nn.GELU(),
            nn.Dropout(dropout),
        ]
        width = n_hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def nb_log_prob(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float = 1e-8):
    """Log-likelihood of counts ``x`` under NB(mean ``mu``, inverse dispersion ``theta``).

    Equals scipy's ``nbinom.logpmf(x, n=theta, p=theta / (theta + mu))``.
    """
    log_theta_mu = torch.log(theta + mu + eps)
    return (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
        + theta * (torch.log(theta + eps) - log_theta_mu)
        + x * (torch.log(mu + eps) - log_theta_mu)
    )


def sample_gamma(shape: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gamma(shape, 1) draws from an explicit generator (Marsaglia & Tsang 2000).

    ``torch.distributions.Gamma`` cannot take a generator, so the same seed would not give
    the same counts; this rejection sampler draws only from ``generator``.
    """
    shape = shape.double()
    boost = shape < 1  # Gamma(a) = Gamma(a + 1) * U^(1/a)
    a = torch.where(boost, shape + 1, shape)
    d = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while todo.any():
        idx = todo.nonzero(as_tuple=True)
        z = torch.randn(idx[0].shape, generator=generator, dtype=a.dtype)
        u = torch.rand(idx[0].shape, generator=generator, dtype=a.dtype)
        v = (1 + c[idx] * z) ** 3
        ok = (v > 0) & (
            torch.log(u) < 0.5 * z**2 + d[idx] - d[idx] * v + d[idx] * torch.log(v.clamp(min=1e-30))
        )
        out[tuple(i[ok] for i in idx)] = (d[idx] * v)[ok]
        todo[tuple(i[ok] for i in idx)] = False
    u = torch.rand(a.shape, generator=generator, dtype=a.dtype)
    return torch.where(boost, out * u ** (1.0 / shape.clamp(min=1e-12)), out)


def sample_nb(mu: torch.Tensor, theta: torch.Tensor, generator: torch.Generator | None = None):
    """NB counts as a Gamma-Poisson mixture, all randomness from ``generator``."""
    theta = theta.expand_as(mu)
    rate = sample_gamma(theta, generator) * (mu.double() / theta.double())
    return torch.poisson(rate, generator=generator).to(mu.dtype)


class ExpressionAutoencoder(nn.Module):
    """log1p expression ``"batch n_genes"`` -> latent ``"batch n_latent"`` -> likelihood params.

    ``nb``: softmax gene proportions times library size give the NB mean, with a learned
    per-gene inverse dispersion. ``gaussian``: a mean and a learned per-gene log-variance
    (continuous profiles, standardised by the caller). ``identity``: the latent *is* the target
    (embedding targets); no parameters. The latent is deterministic; the model standardises
    it per dimension before diffusion.
    """

    def __init__(
        self,
        n_genes: int,
        n_latent: int = 64,
        n_hidden: int = 256,
        n_layers: int = 2,
        likelihood: Likelihood = "nb",
        dropout: float = 0.1,
    ):
        super().__init__()
        self.likelihood = likelihood
        if likelihood == "identity":
            return
        self.encoder = mlp(n_genes, n_hidden, n_latent, n_layers, dropout)
        self.decoder = mlp(n_latent, n_hidden, n_genes, n_layers, dropout)
        if likelihood == "nb":
            self.log_theta = nn.Parameter(torch.full((n_genes,), math.log(5.0)))
        else:
            self.log_var = nn.Parameter(torch.zeros(n_genes))

    def encode(self, x_log1p: torch.Tensor) -> torch.Tensor:
        return x_log1p if self.likelihood == "identity" else self.encoder(x_log1p)

    def decode(
        self, z: torch.Tensor, library: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """NB: ``mu``, ``theta`` (needs ``library`` ``"batch"``); else ``mean`` (+ ``log_var``)."""
        if self.likelihood == "identity":
            return {"mean": z}
        out = self.decoder(z)
        if self.likelihood == "nb":
            mu = torch.softmax(out, dim=-1) * library.unsqueeze(-1)
            return {"mu": mu, "theta": self.log_theta.exp().expand_as(mu)}
        return {"mean": out, "log_var": self.log_var.expand_as(out)}

    def loss(self, x_in: torch.Tensor, target: torch.Tensor, library: torch.Tensor) -> LossOutput:
        """Negative log-likelihood per cell (mean over the batch; NB summed over genes)."""
        out = self.decode(self.encode(x_in), library)
        if self.likelihood == "nb":
            rec = -nb_log_prob(target, out["mu"], out["theta"]).sum(-1).mean()
            return LossOutput(rec / target.shape[-1], rec)
        if self.likelihood == "gaussian":
            lv = out["log_var"]
            rec = 0.5 * ((target - out["mean"]) ** 2 / lv.exp() + lv).sum(-1).mean()
            return LossOutput(rec / target.shape[-1], rec)
        zero = target.sum() * 0.0
        return LossOutput(zero, zero)
