"""Exponential moving average of a model's parameters (buffers are copied)."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Shadow weights ``s <- d*s + (1-d)*p``, warmup ``d_n = min(decay, (1+n)/(10+n))``."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.n_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.n_updates) / (10 + self.n_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)
        self.n_updates += 1

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**{f"shadow.{k}": v for k, v in self.shadow.items()},
                "n_updates": torch.tensor(self.n_updates)}  # fmt: skip

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow = {k[7:]: v.clone() for k, v in state.items() if k.startswith("shadow.")}
        self.n_updates = int(state["n_updates"])
