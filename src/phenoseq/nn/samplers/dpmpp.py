"""DPM-Solver++ 2M (Lu et al. 2022): a second-order multistep ODE solver in data prediction.

With ``lambda = log(alpha / sigma)`` and ``h = lambda_prev - lambda_t``:
first order  ``x_prev = sigma_prev / sigma_t * x - alpha_prev * (exp(-h) - 1) * x0``;
second order replaces ``x0`` by ``(1 + 1/(2r)) x0_t - 1/(2r) x0_last`` with
``r = h_last / h``. The first step and the final step (to the clean sample) are first order.
"""

from __future__ import annotations

import torch

from .base import Scheduler, SchedulerOutput


class DPMSolverMultistepScheduler(Scheduler):
    order = 2

    def _reset(self) -> None:
        self._last_x0: torch.Tensor | None = None
        self._last_lambda: torch.Tensor | None = None

    def _lambda(self, ab: torch.Tensor) -> torch.Tensor:
        return 0.5 * (ab.log() - (1 - ab).log())

    def step(self, model_output, timestep: int, sample, generator=None) -> SchedulerOutput:
        t, prev = int(timestep), self.previous_timestep(int(timestep))
        ab = self.alpha_bar(t)
        x0, _ = self.x0_and_eps(model_output, t, sample)
        if prev < 0:  # the final step lands on the clean sample: x_prev = x0 (first order)
            self._reset()
            return SchedulerOutput(x0, x0)
        ab_prev = self.alpha_bar(prev)
        lam, lam_prev = self._lambda(ab), self._lambda(ab_prev)
        h = lam_prev - lam
        d = x0
        if self._last_x0 is not None:
            r = (lam - self._last_lambda) / h
            d = (1 + 1 / (2 * r)).to(x0.dtype) * x0 - (1 / (2 * r)).to(x0.dtype) * self._last_x0
        ratio = ((1 - ab_prev) / (1 - ab)).sqrt().to(sample.dtype)
        coef = (ab_prev.sqrt() * torch.expm1(-h)).to(sample.dtype)
        prev_sample = ratio * sample - coef * d
        self._last_x0, self._last_lambda = x0, lam
        return SchedulerOutput(prev_sample, x0)
