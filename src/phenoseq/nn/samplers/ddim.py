"""DDIM (Song et al. 2021): deterministic at ``eta=0``, DDPM-like noise at ``eta=1``."""

from __future__ import annotations

import torch

from .._random import randn
from ..schedule import PredictionType
from .base import Scheduler, SchedulerOutput, TimestepSpacing


class DDIMScheduler(Scheduler):
    """``x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) eps + sigma z`` with
    ``sigma = eta * sqrt((1 - ab_prev) / (1 - ab_t)) * sqrt(1 - ab_t / ab_prev)``.

    Parameters
    ----------
    eta
        0 (default): the deterministic probability-flow sampler; 1: the DDPM posterior
        variance; noise then comes from the ``generator`` passed to :meth:`step`.
    **others
        As :class:`Scheduler`.
    """

    def __init__(
        self,
        n_train_timesteps: int = 1000,
        prediction_type: PredictionType = "v_prediction",
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
        timestep_spacing: TimestepSpacing = "quadratic",
        eta: float = 0.0,
    ):
        super().__init__(
            n_train_timesteps, prediction_type, clip_sample, clip_sample_range, timestep_spacing
        )
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.eta = eta

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
        x0, eps = self.convert_model_output(model_output, t, sample)
        sigma = self.eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5
        direction = max(1 - ab_prev - sigma**2, 0.0) ** 0.5
        prev_sample = ab_prev**0.5 * x0 + direction * eps
        if sigma > 0:
            noise = randn(tuple(sample.shape), generator, sample.device, sample.dtype)
            prev_sample = prev_sample + sigma * noise
        return SchedulerOutput(prev_sample, x0)
