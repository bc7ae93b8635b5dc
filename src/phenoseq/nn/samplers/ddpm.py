"""DDPM ancestral sampling (Ho et al. 2020) on any subset of the training timesteps."""

from __future__ import annotations

import torch

from .._random import randn
from .base import Scheduler, SchedulerOutput


class DDPMScheduler(Scheduler):
    """Draws ``x_prev`` from the Gaussian posterior ``q(x_prev | x_t, x0)`` with the model's
    ``x0`` ("fixed_small" variance). Between two inference timesteps the effective
    ``beta = 1 - alpha_bar_t / alpha_bar_prev``, so fewer steps than training steps are exact
    for the implied coarser chain. The last step returns the posterior mean (no noise).

    Parameters are those of :class:`Scheduler`.
    """

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        t = int(timestep)
        prev = self.previous_timestep(t)
        ab, ab_prev = self.alpha_bar(t), self.alpha_bar(prev)
        x0, _ = self.convert_model_output(model_output, t, sample)
        beta = 1 - ab / ab_prev
        coef_x0 = ab_prev**0.5 * beta / (1 - ab)
        coef_xt = (1 - beta) ** 0.5 * (1 - ab_prev) / (1 - ab)
        mean = coef_x0 * x0 + coef_xt * sample
        variance = beta * (1 - ab_prev) / (1 - ab)
        if prev < 0 or variance <= 0:
            return SchedulerOutput(mean, x0)
        noise = randn(tuple(sample.shape), generator, sample.device, sample.dtype)
        return SchedulerOutput(mean + variance**0.5 * noise, x0)
