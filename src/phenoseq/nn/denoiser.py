"""Denoiser: a residual MLP on the latent with adaptive layer norm (adaLN-Zero) from the
timestep and the pooled condition, optionally cross-attending to the condition tokens.
It knows nothing of the noise schedule."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding ``"batch dim"`` of (integer or real) timesteps ``"batch"``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float().unsqueeze(-1) * freqs.to(t.device)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class AdaLNBlock(nn.Module):
    """x + gate * MLP(LN(x) * (1 + scale) + shift), modulation from the conditioning vector."""

    def __init__(self, width: int, dropout: float, use_cross_attention: bool, n_heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * width, width))  # fmt: skip
        self.modulation = nn.Linear(width, 3 * width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.cross = (
            nn.MultiheadAttention(width, n_heads, batch_first=True) if use_cross_attention else None
        )
        self.cross_norm = nn.LayerNorm(width) if use_cross_attention else None

    def forward(self, x, c, tokens):
        shift, scale, gate = self.modulation(nn.functional.silu(c)).chunk(3, dim=-1)
        x = x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)
        if self.cross is not None and tokens is not None:
            q = self.cross_norm(x).unsqueeze(1)
            x = x + self.cross(q, tokens, tokens, need_weights=False)[0].squeeze(1)
        return x


class Denoiser(nn.Module):
    """``sample`` ``"batch n_latent"``, ``timesteps`` ``"batch"``, ``cond`` ``"batch d_cond"``,
    ``tokens`` ``"batch n_tokens d_cond"`` (or None) -> model output ``"batch n_latent"``."""

    def __init__(
        self,
        n_latent: int,
        d_cond: int,
        width: int = 512,
        depth: int = 6,
        dropout: float = 0.0,
        use_cross_attention: bool = False,
        n_heads: int = 4,
    ):
        super().__init__()
        self.width = width
        self.inp = nn.Linear(n_latent, width)
        self.time = nn.Sequential(nn.Linear(128, width), nn.SiLU(), nn.Linear(width, width))
        self.cond = nn.Linear(d_cond, width)
        self.token_proj = nn.Linear(d_cond, width) if use_cross_attention else None
        self.blocks = nn.ModuleList(
            AdaLNBlock(width, dropout, use_cross_attention, n_heads) for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False)
        self.final_mod = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, n_latent)
        for layer in (self.final_mod, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, sample, timesteps, cond, tokens=None):
        c = self.time(timestep_embedding(timesteps, 128)) + self.cond(cond)
        toks = (
            self.token_proj(tokens) if self.token_proj is not None and tokens is not None else None
        )
        x = self.inp(sample)
        for block in self.blocks:
            x = block(x, c, toks)
        shift, scale = self.final_mod(nn.functional.silu(c)).chunk(2, dim=-1)
        return self.out(self.final_norm(x) * (1 + scale) + shift)
