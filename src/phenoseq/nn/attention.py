"""Multi-head attention on ``scaled_dot_product_attention`` with a boolean key mask.

Shared by the condition encoder (self-attention over a set of cells, attention pooling) and
the denoiser (cross-attention to condition tokens). Unlike ``nn.MultiheadAttention`` the mask
is ``True`` = attend (the set convention of :class:`~phenoseq.nn.ConditionEncoder`) and there
is no fast path that changes behaviour between train and eval mode.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    """Queries ``"batch n_q d_model"`` attend to a context ``"batch n_kv d_context"``.

    Parameters
    ----------
    d_model
        Width of the queries and the output; divisible by ``n_heads``.
    n_heads
        Number of heads.
    d_context
        Width of the context (default ``d_model``).
    dropout
        Attention-weight dropout (training mode only).
    """

    def __init__(
        self, d_model: int, n_heads: int, d_context: int | None = None, dropout: float = 0.0
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.dropout = n_heads, dropout
        self.to_q = nn.Linear(d_model, d_model)
        self.to_kv = nn.Linear(d_context or d_model, 2 * d_model)
        self.to_out = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention output ``"batch n_q d_model"``.

        Parameters
        ----------
        x
            Queries ``"batch n_q d_model"``.
        context
            Keys and values ``"batch n_kv d_context"`` (default ``x``: self-attention).
        key_mask
            ``"batch n_kv"`` bool, ``True`` where a key may be attended to; every row needs
            at least one ``True``.
        """
        context = x if context is None else context
        k, v = self.to_kv(context).chunk(2, dim=-1)
        q, k, v = self._heads(self.to_q(x)), self._heads(k), self._heads(v)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.to_out(out.transpose(1, 2).flatten(2))


def feed_forward(d_model: int, mult: int = 2, dropout: float = 0.0) -> nn.Sequential:
    """Position-wise MLP ``d_model -> mult * d_model -> d_model`` with GELU."""
    return nn.Sequential(
        nn.Linear(d_model, mult * d_model),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(mult * d_model, d_model),
    )
