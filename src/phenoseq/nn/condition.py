"""Condition encoder: a set of N morphology cells -> condition tokens and a pooled vector.

A per-cell MLP, self-attention blocks without positional encoding (permutation-equivariant,
a set transformer's SAB) and attention pooling with learned seed vectors (PMA): the output
does not depend on the order of the cells, and padded cells (``mask=False``) are ignored.
"""

from __future__ import annotations

import torch
from torch import nn


class SetAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ConditionEncoder(nn.Module):
    """``cells`` ``"batch n_set n_features"`` (+ ``mask`` ``"batch n_set"``, True = valid) ->
    ``tokens`` ``"batch n_tokens d_model"``, ``pooled`` ``"batch d_model"``."""

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
        self.embed = nn.Sequential(
            nn.Linear(n_features, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )
        self.blocks = nn.ModuleList(
            SetAttentionBlock(d_model, n_heads, dropout) for _ in range(n_layers)
        )
        self.seeds = nn.Parameter(torch.randn(n_tokens, d_model) * d_model**-0.5)
        self.pool = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, cells: torch.Tensor, mask: torch.Tensor | None = None):
        pad = None if mask is None else ~mask.bool()
        x = self.embed(cells)
        for block in self.blocks:
            x = block(x, pad)
        seeds = self.seeds.unsqueeze(0).expand(len(x), -1, -1)
        tokens = self.norm(
            self.pool(seeds, x, x, key_padding_mask=pad, need_weights=False)[0] + seeds
        )
        return tokens, self.out(tokens.mean(dim=1))
