"""DPM-Solver++ 2M (Lu et al. 2022): a second-order multistep ODE solver in data prediction.

With ``alpha = sqrt(ab)``, ``sigma = sqrt(1 - ab)``, ``lambda = log(alpha / sigma)`` and the
step size ``h = lambda_prev - lambda_t``, the first-order update (DDIM) is::

    x_prev = sigma_prev / sigma_t * x_t - alpha_prev * (exp(-h) - 1) * x0_t

and the second-order multistep update replaces ``x0_t`` by the extrapolation
``(1 + 1 / (2 r)) * x0_t - 1 / (2 r) * x0_last`` with ``r = h_last / h`` (the "midpoint"
form of the paper's Algorithm 2 and diffusers' ``solver_type="midpoint"``).
"""

from __future__ import annotations

import math

import torch

from ..schedule import PredictionType
from .base import Scheduler, SchedulerOutput, TimestepSpacing


def log_snr_half(alpha_bar: float) -> float:
    """``lambda = log(alpha / sigma) = 0.5 * log(ab / (1 - ab))``; ``+inf`` at ``ab = 1``."""
    return math.inf if alpha_bar >= 1.0 else 0.5 * (math.log(alpha_bar) - math.log1p(-alpha_bar))


class DPMSolverMultistepScheduler(Scheduler):
    """DPM-Solver++ 2M: deterministic; one model evaluation per step; accurate at 10-20 steps.

    First-order steps are used (a) at the first step (no history), (b) at the final step,
    which lands on the clean sample (``sigma_prev = 0``, so the update is exactly ``x0``), and
    (c) with ``lower_order_final`` and fewer than 15 steps, also at the second-to-last step,
    where the step-size ratio ``r`` gets extreme and the extrapolation amplifies model error
    (diffusers' ``lower_order_final``). The history is cleared by :meth:`set_timesteps`.

    Parameters
    ----------
    lower_order_final
        Use a first-order second-to-last step when ``n_steps < 15``.
    **others
        As :class:`Scheduler`.
    """

    order = 2

    def __init__(
        self,
        n_train_timesteps: int = 1000,
        prediction_type: PredictionType = "v_prediction",
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
        timestep_spacing: TimestepSpacing = "quadratic",
        lower_order_final: bool = True,
    ):
        super().__init__(
            n_train_timesteps, prediction_type, clip_sample, clip_sample_range, timestep_spacing
        )
        self.lower_order_final = lower_order_final
        self._reset_state()

    def _reset_state(self) -> None:
        self._last_x0: torch.Tensor | None = None
        self._last_lambda = math.nan
        self._last_index = -2

    def _use_first_order(self, index: int) -> bool:
        n = len(self.timesteps)
        no_history = self._last_x0 is None or self._last_index != index - 1
        second_to_last = self.lower_order_final and n < 15 and index == n - 2
        return no_history or second_to_last

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        t = int(timestep)
        index = self.step_index(t)
        prev = self.previous_timestep(t)
        x0, _ = self.convert_model_output(model_output, t, sample)
        if prev < 0:  # sigma_prev = 0, alpha_prev = 1: the update is exactly x0
            self._reset_state()
            return SchedulerOutput(x0, x0)
        ab, ab_prev = self.alpha_bar(t), self.alpha_bar(prev)
        lam, lam_prev = log_snr_half(ab), log_snr_half(ab_prev)
        h = lam_prev - lam
        data = x0
        if not self._use_first_order(index):
            r = (lam - self._last_lambda) / h
            data = (1 + 0.5 / r) * x0 - (0.5 / r) * self._last_x0
        sigma_ratio = ((1 - ab_prev) / (1 - ab)) ** 0.5
        prev_sample = sigma_ratio * sample - ab_prev**0.5 * math.expm1(-h) * data
        self._last_x0, self._last_lambda, self._last_index = x0, lam, index
        return SchedulerOutput(prev_sample, x0)
