"""Exponential moving average of a model's weights, for sampling with smoothed parameters."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Shadow copy of a model's ``state_dict``: floating-point parameters are averaged,
    ``s <- d * s + (1 - d) * p``; buffers (and integer tensors) are copied as they are.

    With ``use_warmup`` the decay of the ``n``-th update (``n = 0, 1, ...``) is
    ``d_n = min(decay, (1 + n) / (10 + n))`` (diffusers' ``EMAModel`` default), so early,
    fast-moving weights are not frozen into the average.

    Parameters
    ----------
    model
        The model to track; the shadow starts as a copy of its weights (same devices).
    decay
        Asymptotic decay in ``[0, 1)``.
    use_warmup
        Ramp the decay up as above (``False``: ``decay`` from the first update).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, use_warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay, self.use_warmup = decay, use_warmup
        self.n_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._averaged = {
            name
            for name, p in model.named_parameters(remove_duplicate=False)
            if p.is_floating_point()
        }

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        if not self.use_warmup:
            return self.decay
        return min(self.decay, (1 + self.n_updates) / (10 + self.n_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards ``model``'s current weights (call after each optimiser step)."""
        d = self.current_decay()
        for name, value in model.state_dict().items():
            if name in self._averaged:
                self.shadow[name].lerp_(value.detach(), 1 - d)
            else:
                self.shadow[name].copy_(value)
        self.n_updates += 1

    def to(self, device: torch.device | str) -> EMA:
        """Move the shadow weights to ``device``."""
        self.shadow = {k: v.to(device) for k, v in self.shadow.items()}
        return self

    def copy_to(self, model: nn.Module) -> None:
        """Load the shadow weights into ``model`` (keep a copy of its own first if needed)."""
        model.load_state_dict(self.shadow)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat tensor dict (safetensors-ready): ``shadow.<name>`` and ``n_updates``."""
        state = {f"shadow.{k}": v for k, v in self.shadow.items()}
        state["n_updates"] = torch.tensor(self.n_updates)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`state_dict` (shadow tensors keep this EMA's devices)."""
        prefix = "shadow."
        loaded = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if loaded.keys() != self.shadow.keys():
            missing = sorted(self.shadow.keys() - loaded.keys())
            extra = sorted(loaded.keys() - self.shadow.keys())
            raise ValueError(f"EMA state mismatch: missing {missing}, extra {extra}")
        for k, v in loaded.items():
            self.shadow[k].copy_(v)
        self.n_updates = int(state["n_updates"])
