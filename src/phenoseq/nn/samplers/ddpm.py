"""DDPM ancestral sampling (Ho et al. 2020) on any subset of the training timesteps."""

from __future__ import annotations

from .base import Scheduler, SchedulerOutput, randn_like


class DDPMScheduler(Scheduler):
    """Samples the Gaussian posterior q(x_prev | x_t, x0) with x0 predicted by the model."""

    def step(self, model_output, timestep: int, sample, generator=None) -> SchedulerOutput:
        t, prev = int(timestep), self.previous_timestep(int(timestep))
        ab, ab_prev = self.alpha_bar(t), self.alpha_bar(prev)
        x0, _ = self.x0_and_eps(model_output, t, sample)
        beta = 1 - ab / ab_prev  # the effective beta between the two timesteps
        c0 = (ab_prev.sqrt() * beta / (1 - ab)).to(sample.dtype)
        ct = ((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)).to(sample.dtype)
        mean = c0 * x0 + ct * sample
        if prev < 0:
            return SchedulerOutput(mean, x0)
        var = (beta * (1 - ab_prev) / (1 - ab)).to(sample.dtype)
        return SchedulerOutput(mean + var.sqrt() * randn_like(sample, generator), x0)
