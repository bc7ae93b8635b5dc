"""Expression autoencoder: log1p expression -> deterministic latent z -> likelihood parameters.

The diffusion model runs in z, so the latent's scale matters: with ``use_latent_norm`` (the
default) the encoder ends in a parameter-free LayerNorm, so every latent has zero mean and
unit variance over its ``n_latent`` dimensions. The scale is then fixed by construction (the
autoencoder cannot shrink or inflate it during training), matching the unit-variance noise of
the diffusion without a fitted scale factor; the decoder applies the same normalisation
first, so a generated latent slightly off that sphere decodes as its projection. Per-dimension
standardisation on top (fitted on training latents) remains the caller's choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .likelihoods import gaussian_log_prob, nb_log_prob

Likelihood = Literal["nb", "gaussian", "identity"]


@dataclass
class LossOutput:
    """Autoencoder loss and its parts (scvi-tools' ``LossOutput``, pared down).

    Attributes
    ----------
    loss
        Scalar to minimise: negative log-likelihood per cell and gene (nats), so its scale
        does not depend on ``n_genes``.
    reconstruction
        ``"batch"`` negative log-likelihood of each cell, summed over genes (nats).
    """

    loss: torch.Tensor
    reconstruction: torch.Tensor


def mlp(n_in: int, n_hidden: int, n_out: int, n_layers: int, dropout: float) -> nn.Sequential:
    """``n_layers`` hidden blocks (Linear, LayerNorm, GELU, Dropout), then a linear output."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, n_hidden), nn.LayerNorm(n_hidden), nn.GELU()]
        layers.append(nn.Dropout(dropout))
        width = n_hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class ExpressionAutoencoder(nn.Module):
    """log1p expression ``"batch n_genes"`` -> latent ``"batch n_latent"`` -> likelihood.

    Parameters
    ----------
    n_genes
        Number of genes (or profile / embedding dimensions).
    n_latent
        Latent dimension (ignored for ``"identity"``, where it equals ``n_genes``).
    n_hidden, n_layers, dropout
        Width, depth and dropout of the encoder and decoder MLPs.
    likelihood
        ``"nb"``: counts; softmax gene proportions times the library size give the NB mean
        ``mu``, with a learned per-gene inverse dispersion ``theta = exp(log_theta)``.
        ``"gaussian"``: continuous profiles (e.g. L1000 z-scores, log expression), standardised
        by the caller; a mean and a learned per-gene ``log_var``. ``"identity"``: the latent
        *is* the target (embedding targets such as scGPT); no parameters, zero loss.
    use_latent_norm
        End the encoder in a parameter-free LayerNorm (see the module docstring).
    """

    def __init__(
        self,
        n_genes: int,
        n_latent: int = 64,
        n_hidden: int = 256,
        n_layers: int = 2,
        likelihood: Likelihood = "nb",
        dropout: float = 0.1,
        use_latent_norm: bool = True,
    ):
        super().__init__()
        if likelihood not in ("nb", "gaussian", "identity"):
            raise ValueError(f"unknown likelihood {likelihood!r}; use 'nb', 'gaussian', 'identity'")
        self.n_genes, self.likelihood = n_genes, likelihood
        self.n_latent = n_genes if likelihood == "identity" else n_latent
        self.use_latent_norm = use_latent_norm and likelihood != "identity"
        if likelihood == "identity":
            return
        self.encoder = mlp(n_genes, n_hidden, n_latent, n_layers, dropout)
        self.decoder = mlp(n_latent, n_hidden, n_genes, n_layers, dropout)
        if likelihood == "nb":
            self.log_theta = nn.Parameter(torch.zeros(n_genes))
        else:
            self.log_var = nn.Parameter(torch.zeros(n_genes))

    def _normalize(self, z: torch.Tensor) -> torch.Tensor:
        if not self.use_latent_norm:
            return z
        return nn.functional.layer_norm(z, (self.n_latent,))

    def encode(self, x_log1p: torch.Tensor) -> torch.Tensor:
        """Latent ``"batch n_latent"`` of ``x_log1p`` ``"batch n_genes"`` (deterministic)."""
        if self.likelihood == "identity":
            return x_log1p
        return self._normalize(self.encoder(x_log1p))

    def decode(
        self, z: torch.Tensor, library: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Likelihood parameters of latents ``z`` ``"batch n_latent"``.

        Parameters
        ----------
        z
            Latents (raw, as :meth:`encode` returns them).
        library
            ``"batch"`` total counts per cell; ``"nb"`` only.

        Returns
        -------
        ``"nb"``: ``scale`` (gene proportions, rows sum to 1), ``theta``, and ``mu =
        scale * library`` when ``library`` is given; ``"gaussian"``: ``mean``, ``log_var``;
        ``"identity"``: ``mean = z``. Every value is ``"batch n_genes"``.
        """
        if self.likelihood == "identity":
            return {"mean": z}
        out = self.decoder(self._normalize(z))
        if self.likelihood == "gaussian":
            return {"mean": out, "log_var": self.log_var.expand_as(out)}
        scale = torch.softmax(out, dim=-1)
        params = {"scale": scale, "theta": self.log_theta.exp().expand_as(scale)}
        if library is not None:
            params["mu"] = scale * library.reshape(*scale.shape[:-1], 1).to(scale.dtype)
        return params

    def forward(
        self, x_log1p: torch.Tensor, library: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``decode(encode(x_log1p), library)``."""
        return self.decode(self.encode(x_log1p), library)

    def loss(
        self, x_log1p: torch.Tensor, target: torch.Tensor, library: torch.Tensor | None = None
    ) -> LossOutput:
        """Reconstruction negative log-likelihood of ``target`` given ``x_log1p``.

        Parameters
        ----------
        x_log1p
            Encoder input ``"batch n_genes"``: log1p of library-normalised counts (its
            normalisation is the caller's, one implementation for training and generation),
            or the continuous values themselves.
        target
            ``"batch n_genes"``: raw counts (``"nb"``) or the values to reconstruct.
        library
            ``"batch"`` library sizes (``"nb"``; default: ``target.sum(-1)``).
        """
        out = self(x_log1p, self._library(target, library))
        if self.likelihood == "nb":
            nll = -nb_log_prob(target, out["mu"], out["theta"]).sum(-1)
        elif self.likelihood == "gaussian":
            nll = -gaussian_log_prob(target, out["mean"], out["log_var"]).sum(-1)
        else:
            nll = torch.zeros(target.shape[:-1], dtype=target.dtype, device=target.device)
        return LossOutput(nll.mean() / self.n_genes, nll)

    def _library(self, target: torch.Tensor, library: torch.Tensor | None) -> torch.Tensor | None:
        if self.likelihood != "nb" or library is not None:
            return library
        return target.sum(-1)
