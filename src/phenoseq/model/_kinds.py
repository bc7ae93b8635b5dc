"""One entry per kind of expression target: how it is viewed, encoded, and decoded to outputs.

The wiring that differs between kinds is chosen once, here, from :data:`KINDS`; the rest of the
model is the same for all of them:

- ``counts``: raw UMI counts; the autoencoder's encoder sees log1p of library-normalised
  counts, its negative-binomial decoder reconstructs the counts; generated cells are NB draws
  (``X`` sparse counts, ``layers['log1p']``).
- ``continuous``: profiles such as L1000 z-scores or log expression, standardised per gene
  with statistics of the training rows; a Gaussian decoder. Generated values are *anchored*:
  each mixture component's cells are shifted by ``target - decode(component mean)``, where
  ``target`` is the mean head's prediction in gene space (a training treatment's own mean
  profile, or kernel ridge on the training profiles) — the autoencoder's bottleneck then shapes
  the spread around the mean, not the mean itself.
- ``embedding``: an ``obsm`` embedding (e.g. scGPT) is the target itself (no autoencoder: the
  diffusion runs on the standardised embedding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from ..data.transforms import dense, log1p_view, normalize_log1p
from ..nn import ExpressionAutoencoder, sample_nb

if TYPE_CHECKING:
    from ..config import ModelConfig
    from ._registry import Registry


@dataclass(frozen=True)
class Kind:
    """How one kind of target is modelled (see the module docstring)."""

    name: str
    likelihood: str  # of the autoencoder: nb | gaussian | identity
    has_autoencoder: bool = True  # False: the target is the latent (nothing to train)
    standardized: bool = True  # targets z-scored per gene with training statistics
    sparse_output: bool = False  # generated X as CSR counts, plus a log1p layer
    anchored: bool = False  # generated values re-centred on the mean head's gene-space mean

    def n_latent(self, n_genes: int, config: ModelConfig) -> int:
        """Dimension of the diffused latent."""
        return config.n_latent if self.has_autoencoder else n_genes

    def build_autoencoder(self, n_genes: int, config: ModelConfig) -> ExpressionAutoencoder:
        n_latent = self.n_latent(n_genes, config)
        return ExpressionAutoencoder(n_genes, n_latent, config.ae_hidden, config.ae_layers,
                                     self.likelihood, config.ae_dropout)  # fmt: skip

    @property
    def reconstruction_target(self) -> str:
        """Which array the autoencoder reconstructs: raw ``values`` (counts) or its input."""
        return "log1p" if self.standardized else "values"

    def raw_arrays(self, x: np.ndarray | sp.spmatrix) -> dict[str, np.ndarray]:
        """``values`` (float32), the unscaled analysis view ``log1p`` and ``library`` of rows
        ``x`` (columns = the model's genes)."""
        values = dense(x).astype(np.float32)
        library = values.sum(axis=1) if not self.standardized else np.ones(len(values))
        return {
            "values": values,
            "log1p": log1p_view(values, self.name).astype(np.float32),
            "library": library.astype(np.float32),
        }

    def arrays(self, x: np.ndarray | sp.spmatrix, registry: Registry) -> dict[str, np.ndarray]:
        """The model's arrays of rows ``x``: the encoder input ``log1p`` is standardised with
        the registry's target scaler for continuous and embedding targets."""
        out = self.raw_arrays(x)
        if self.standardized:
            out["log1p"] = (out["values"] - registry.target_mean) / registry.target_std
        return out

    @torch.no_grad()
    def decode(
        self,
        autoencoder: ExpressionAutoencoder,
        z: torch.Tensor,
        library: torch.Tensor,
        generator: torch.Generator,
        registry: Registry,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Latents ``z`` (unstandardised, on the model's device) to ``(X, log1p)``: NB counts
        and their log1p view, or values (``log1p`` None)."""
        if self.likelihood == "nb":  # the NB draws stay on the host: same numbers everywhere
            out = autoencoder.decode(z, library)
            counts = sample_nb(out["mu"].cpu(), out["theta"].cpu(), generator)
            counts = counts.numpy().astype(np.float32)
            return counts, normalize_log1p(counts).astype(np.float32)
        mean = autoencoder.decode(z, None)["mean"]
        values = mean.cpu().numpy() * registry.target_std + registry.target_mean
        return values.astype(np.float32), None


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("counts", "nb", standardized=False, sparse_output=True),
        Kind("continuous", "gaussian", anchored=True),
        Kind("embedding", "identity", has_autoencoder=False),
    )
}
