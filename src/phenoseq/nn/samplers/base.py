"""The sampler contract (diffusers' names): ``set_timesteps``, ``step``, ``add_noise``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..schedule import PredictionType, alphas_cumprod, cosine_betas, predict_epsilon, predict_x0


@dataclass
class SchedulerOutput:
    """``prev_sample``: the next (less noisy) sample; ``pred_original_sample``: the x0 estimate."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class Scheduler:
    """Shared state of every sampler: the cosine schedule and the inference timesteps.

    Timesteps are spaced "trailing": ``n_steps`` evenly spaced values from ``T-1`` down, the
    step after the last one landing on the clean sample (alpha_bar = 1), so every model
    evaluation does useful work even at 5 steps.
    """

    order = 1

    def __init__(
        self,
        n_train_timesteps: int = 1000,
        prediction_type: PredictionType = "v_prediction",
        clip_sample: float | None = None,
    ):
        self.n_train_timesteps = n_train_timesteps
        self.prediction_type = prediction_type
        self.clip_sample = clip_sample
        self.alphas_cumprod = alphas_cumprod(cosine_betas(n_train_timesteps))
        self.timesteps = torch.empty(0, dtype=torch.long)

    def set_timesteps(self, n_steps: int) -> None:
        if n_steps < 1:
            raise ValueError("n_steps must be >= 1")
        t = torch.linspace(self.n_train_timesteps, 0, n_steps + 1, dtype=torch.float64)[:-1]
        self.timesteps = (t.round().long() - 1).clamp(min=0)
        self._reset()

    def _reset(self) -> None:
        """Clear multistep state (overridden by multistep samplers)."""

    def alpha_bar(self, t: int) -> torch.Tensor:
        """alpha_bar at timestep ``t``; 1 for ``t < 0`` (the clean sample)."""
        return self.alphas_cumprod[t] if t >= 0 else torch.tensor(1.0, dtype=torch.float64)

    def previous_timestep(self, t: int) -> int:
        idx = (self.timesteps == t).nonzero()
        if not len(idx):
            raise ValueError(f"timestep {t} is not in the schedule; call set_timesteps first")
        i = int(idx[0, 0])
        return int(self.timesteps[i + 1]) if i + 1 < len(self.timesteps) else -1

    def x0_and_eps(self, model_output, t: int, sample):
        ab = self.alpha_bar(t)
        x0 = predict_x0(sample, model_output, ab, self.prediction_type)
        if self.clip_sample is not None:
            x0 = x0.clamp(-self.clip_sample, self.clip_sample)
            a, b = ab.sqrt().to(sample.dtype), (1 - ab).sqrt().to(sample.dtype)
            return x0, (sample - a * x0) / b
        return x0, predict_epsilon(sample, model_output, ab, self.prediction_type)

    def add_noise(self, original_samples, noise, timesteps) -> torch.Tensor:
        """``sqrt(ab_t) * x0 + sqrt(1 - ab_t) * noise`` for a batch of timesteps."""
        ab = self.alphas_cumprod.to(original_samples.device)[timesteps]
        a = ab.sqrt().to(original_samples.dtype)
        b = (1 - ab).sqrt().to(original_samples.dtype)
        shape = (-1,) + (1,) * (original_samples.dim() - 1)
        return a.view(shape) * original_samples + b.view(shape) * noise

    def step(self, model_output, timestep: int, sample, generator=None) -> SchedulerOutput:
        raise NotImplementedError


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
