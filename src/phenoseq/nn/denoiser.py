"""Denoiser: a residual MLP on the latent with adaptive layer norm (adaLN-Zero, Peebles & Xie
2023) from the timestep and the pooled condition, optionally cross-attending from the latent
(as one token) to the condition tokens. It knows nothing of the noise schedule: timesteps are
just numbers to embed, and what the output means is the diffusion wrapper's business.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .attention import Attention

FREQUENCY_DIM = 256


def timestep_embedding(
    timesteps: torch.Tensor, dim: int, max_period: float = 10_000.0
) -> torch.Tensor:
    """Sinusoidal embedding ``"batch dim"`` of (integer or real) ``timesteps`` ``"batch"``."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, device=timesteps.device) / half
    args = timesteps.float().unsqueeze(-1) * torch.exp(exponent).unsqueeze(0)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return nn.functional.pad(emb, (0, dim % 2))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x * (1 + scale) + shift`` (all ``"batch width"``)."""
    return x * (1 + scale) + shift


def zero_init(layer: nn.Linear) -> nn.Linear:
    """Zero a linear layer's weight and bias (adaLN-Zero: every block starts as the identity)."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class AdaLNBlock(nn.Module):
    """``x + gate * MLP(modulate(LN x))`` and, optionally, ``x + gate' * CrossAttn(...)``.

    Shift, scale and gate come from the conditioning vector ``c`` through a zero-initialised
    linear layer, so the block is the identity at initialisation.
    """

    def __init__(
        self, width: int, d_cond: int, n_heads: int, dropout: float, use_cross_attention: bool
    ):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * width, width)
        )
        self.cross = Attention(width, n_heads, d_context=d_cond) if use_cross_attention else None
        n_mod = 6 if use_cross_attention else 3
        self.modulation = zero_init(nn.Linear(width, n_mod * width))

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, tokens: torch.Tensor | None
    ) -> torch.Tensor:
        """``x``, ``c`` ``"batch width"``; ``tokens`` ``"batch n_tokens d_cond"`` or None."""
        mods = self.modulation(c).chunk(6 if self.cross is not None else 3, dim=-1)
        shift, scale, gate = mods[:3]
        x = x + gate * self.mlp(modulate(self.norm(x), shift, scale))
        if self.cross is not None and tokens is not None:
            shift, scale, gate = mods[3:]
            query = modulate(self.norm(x), shift, scale).unsqueeze(1)
            x = x + gate * self.cross(query, tokens).squeeze(1)
        return x


class Denoiser(nn.Module):
    """Residual adaLN-Zero MLP: ``(sample, timesteps, cond, tokens) -> "batch n_latent"``.

    Parameters
    ----------
    n_latent
        Dimension of the diffused latent.
    d_cond
        Width of the pooled condition and of the condition tokens.
    width, depth
        Hidden width and number of residual blocks.
    dropout
        Dropout inside the block MLPs.
    use_cross_attention
        Add a cross-attention sub-block (latent as one query token, condition tokens as keys
        and values) to every block.
    n_heads
        Cross-attention heads; must divide ``width``.
    """

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
        self.n_latent, self.d_cond = n_latent, d_cond
        self.use_cross_attention = use_cross_attention
        self.proj_in = nn.Linear(n_latent, width)
        self.time_embed = nn.Sequential(
            nn.Linear(FREQUENCY_DIM, width), nn.SiLU(), nn.Linear(width, width)
        )
        self.cond_embed = nn.Sequential(
            nn.Linear(d_cond, width), nn.SiLU(), nn.Linear(width, width)
        )
        self.blocks = nn.ModuleList(
            AdaLNBlock(width, d_cond, n_heads, dropout, use_cross_attention) for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_modulation = zero_init(nn.Linear(width, 2 * width))
        self.proj_out = zero_init(nn.Linear(width, n_latent))

    def forward(
        self,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        cond: torch.Tensor,
        tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Model output for noisy latents.

        Parameters
        ----------
        sample
            Noisy latents ``"batch n_latent"``.
        timesteps
            ``"batch"`` (or a scalar, broadcast), integer or real.
        cond
            Pooled condition ``"batch d_cond"``.
        tokens
            Condition tokens ``"batch n_tokens d_cond"``; used only with
            ``use_cross_attention`` (None skips the cross-attention).

        Returns
        -------
        ``"batch n_latent"``; zero at initialisation (adaLN-Zero).
        """
        timesteps = torch.as_tensor(timesteps, device=sample.device).expand(len(sample))
        emb = self.time_embed(timestep_embedding(timesteps, FREQUENCY_DIM).to(sample.dtype))
        c = nn.functional.silu(emb + self.cond_embed(cond))
        x = self.proj_in(sample)
        for block in self.blocks:
            x = block(x, c, tokens)
        shift, scale = self.final_modulation(c).chunk(2, dim=-1)
        return self.proj_out(modulate(self.final_norm(x), shift, scale))
