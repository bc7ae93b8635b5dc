"""DDIM (Song et al. 2021): deterministic at ``eta=0``, DDPM-like noise at ``eta=1``."""

from __future__ import annotations

from .base import Scheduler, SchedulerOutput, randn_like


class DDIMScheduler(Scheduler):
    def __init__(self, *args, eta: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.eta = eta

    def step(self, model_output, timestep: int, sample, generator=None) -> SchedulerOutput:
        t, prev = int(timestep), self.previous_timestep(int(timestep))
        ab, ab_prev = self.alpha_bar(t), self.alpha_bar(prev)
        x0, eps = self.x0_and_eps(model_output, t, sample)
        sigma = self.eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
        direction = (1 - ab_prev - sigma**2).clamp(min=0).sqrt().to(sample.dtype) * eps
        prev_sample = ab_prev.sqrt().to(sample.dtype) * x0 + direction
        if self.eta > 0 and prev >= 0:
            prev_sample = prev_sample + sigma.to(sample.dtype) * randn_like(sample, generator)
        return SchedulerOutput(prev_sample, x0)
