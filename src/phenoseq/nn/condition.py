"""Condition encoder: a set of N morphology cells -> condition tokens and a pooled vector.

A per-cell MLP, self-attention blocks without positional encoding (a set transformer's SAB,
Lee et al. 2019: permutation-equivariant) and pooling by multihead attention with learned
seed vectors (PMA: permutation-invariant). The outputs do not depend on the order of the
cells, padded cells (``mask=False``) never reach a valid cell, and N may be 1 or hundreds.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .attention import Attention, feed_forward


class ConditionOutput(NamedTuple):
    """``pooled`` ``"batch d_model"`` and ``tokens`` ``"batch n_tokens d_model"``."""

    pooled: torch.Tensor
    tokens: torch.Tensor


class SetAttentionBlock(nn.Module):
    """Pre-norm transformer block over a set: ``x + attn(LN x)``, then ``x + mlp(LN x)``."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm_attn, self.norm_mlp = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads, dropout=dropout)
        self.mlp = feed_forward(d_model, dropout=dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``"batch n_set d_model"``, ``mask`` ``"batch n_set"`` -> same shape as ``x``."""
        x = x + self.attn(self.norm_attn(x), key_mask=mask)
        return x + self.mlp(self.norm_mlp(x))


class PoolingByAttention(nn.Module):
    """PMA: ``n_seeds`` learned queries attend to the set -> ``"batch n_seeds d_model"``."""

    def __init__(self, d_model: int, n_heads: int, n_seeds: int, dropout: float = 0.0):
        super().__init__()
        self.seeds = nn.Parameter(torch.randn(n_seeds, d_model) * d_model**-0.5)
        self.norm_set, self.norm_mlp = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads, dropout=dropout)
        self.mlp = feed_forward(d_model, dropout=dropout)
        self.norm_out = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        seeds = self.seeds.unsqueeze(0).expand(len(x), -1, -1)
        h = seeds + self.attn(seeds, self.norm_set(x), key_mask=mask)
        return self.norm_out(h + self.mlp(self.norm_mlp(h)))


class ConditionEncoder(nn.Module):
    """A set of morphology profiles per group -> condition tokens and a pooled vector.

    Parameters
    ----------
    n_features
        Morphology features per cell.
    d_model
        Width of the tokens and of the pooled vector (the denoiser's ``d_cond``).
    n_heads
        Attention heads; must divide ``d_model``.
    n_layers
        Self-attention blocks over the set (0: cells only interact through the pooling).
    n_tokens
        Learned PMA seeds, i.e. output tokens.
    dropout
        Dropout in the attention and MLPs.
    """

    def __init__(
        self,
        n_features: int,
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        n_tokens: int = 8,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.n_features, self.d_model, self.n_tokens = n_features, d_model, n_tokens
        self.embed = nn.Sequential(
            nn.Linear(n_features, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )
        self.blocks = nn.ModuleList(
            SetAttentionBlock(d_model, n_heads, dropout) for _ in range(n_layers)
        )
        self.pool = PoolingByAttention(d_model, n_heads, n_tokens, dropout)
        self.to_pooled = nn.Linear(d_model, d_model)

    def forward(self, cells: torch.Tensor, mask: torch.Tensor | None = None) -> ConditionOutput:
        """Encode sets of cells.

        Parameters
        ----------
        cells
            ``"batch n_set n_features"`` morphology profiles (already normalised).
        mask
            ``"batch n_set"`` bool, ``True`` = a real cell, ``False`` = padding (groups with
            fewer than ``n_set`` cells); every group needs at least one real cell. Padding
            values are ignored, NaN included.

        Returns
        -------
        :class:`ConditionOutput` ``(pooled "batch d_model", tokens "batch n_tokens d_model")``.
        """
        self._check(cells, mask)
        if mask is not None:
            mask = mask.bool()
            cells = cells.masked_fill(~mask.unsqueeze(-1), 0.0)
        x = self.embed(cells)
        for block in self.blocks:
            x = block(x, mask)
        tokens = self.pool(x, mask)
        return ConditionOutput(self.to_pooled(tokens.mean(dim=1)), tokens)

    def _check(self, cells: torch.Tensor, mask: torch.Tensor | None) -> None:
        if cells.dim() != 3 or cells.shape[-1] != self.n_features:
            raise ValueError(
                f"cells must be 'batch n_set n_features' with n_features={self.n_features}, "
                f"got shape {tuple(cells.shape)}"
            )
        if mask is None:
            return
        if mask.shape != cells.shape[:2]:
            raise ValueError(f"mask must be {tuple(cells.shape[:2])}, got {tuple(mask.shape)}")
        if not bool(mask.any(dim=-1).all()):
            raise ValueError("every set needs at least one valid cell (mask row all False)")


class WellConditionEncoder(nn.Module):
    """A well's condition vector -> condition tokens and a pooled vector (the same contract as
    :class:`ConditionEncoder`, for conditions already summarised per well: the whitened mean
    morphology of all the well's cells and the latent mean a cell is generated around).

    Parameters
    ----------
    n_inputs
        Width of the condition vector.
    d_model
        Width of the pooled vector and of the tokens.
    n_tokens
        Output tokens (for cross-attention; a linear map of the pooled vector).
    """

    def __init__(self, n_inputs: int, d_model: int = 128, n_tokens: int = 8):
        super().__init__()
        self.n_inputs, self.d_model, self.n_tokens = n_inputs, d_model, n_tokens
        self.net = nn.Sequential(
            nn.Linear(n_inputs, d_model), nn.GELU(), nn.Linear(d_model, d_model), nn.GELU(),
            nn.Linear(d_model, d_model),
        )  # fmt: skip
        self.to_tokens = nn.Linear(d_model, n_tokens * d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> ConditionOutput:
        """``x`` ``"batch n_inputs"`` -> ``(pooled "batch d_model", tokens "batch n_tokens
        d_model")``; ``mask`` is accepted for the shared contract and must be None."""
        if x.dim() != 2 or x.shape[-1] != self.n_inputs:
            raise ValueError(f"x must be 'batch n_inputs' with n_inputs={self.n_inputs}, got "
                             f"shape {tuple(x.shape)}")  # fmt: skip
        if mask is not None:
            raise ValueError("a well condition has no set to mask")
        pooled = self.net(x)
        return ConditionOutput(pooled, self.to_tokens(pooled).view(len(x), self.n_tokens, -1))
