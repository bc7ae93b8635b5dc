"""The sampler contract, with diffusers' names: ``set_timesteps``, ``step``, ``add_noise``.

A scheduler is not a network: it holds the schedule (``alphas_cumprod``, float64), the
inference ``timesteps`` and, for multistep solvers, the state between steps. The loop is::

    scheduler.set_timesteps(n_steps)
    x = torch.randn(shape, generator=generator)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t), t, x, generator=generator).prev_sample
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..schedule import (
    PredictionType,
    add_noise,
    alphas_cumprod,
    check_prediction_type,
    cosine_betas,
    predict_epsilon,
    predict_x0,
)

TimestepSpacing = Literal["quadratic", "trailing"]


def inference_timesteps(
    n_train_timesteps: int, n_steps: int, spacing: TimestepSpacing = "quadratic"
) -> torch.Tensor:
    """``n_steps`` strictly descending long timesteps from ``n_train_timesteps - 1``.

    ``"quadratic"`` (Song et al. 2021, DDIM): ``t_i = (1 - i / (n - 1))^2 * (T - 1)``, from
    pure noise down to ``t = 0``, with most steps at low noise, where a narrow (per-condition)
    distribution is resolved. ``"trailing"`` (Lin et al. 2024): ``T - 1`` down in even strides
    of ``T / n``; the last model evaluation is then at ``t = T / n - 1``, and its posterior-mean
    jump to the clean sample shrinks the spread of narrow distributions at few steps.
    """
    if not 1 <= n_steps <= n_train_timesteps:
        raise ValueError(f"n_steps must be in [1, {n_train_timesteps}], got {n_steps}")
    i = torch.arange(n_steps, dtype=torch.float64)
    if spacing == "quadratic":
        u = 1 - i / max(n_steps - 1, 1)
        t = (u**2 * (n_train_timesteps - 1)).round()
    elif spacing == "trailing":
        t = (n_train_timesteps * (1 - i / n_steps)).round() - 1
    else:
        raise ValueError(f"unknown timestep_spacing {spacing!r}; use 'quadratic' or 'trailing'")
    # rounding can repeat a timestep near t = 0; lift repeats so that t_i >= t_{i+1} + 1
    lifted = (t + i).flip(0).cummax(0).values.flip(0) - i
    return lifted.long()


@dataclass
class SchedulerOutput:
    """One sampler step.

    Attributes
    ----------
    prev_sample
        The sample at the previous (less noisy) timestep, ``"batch *dims"``.
    pred_original_sample
        The model's estimate of the clean sample ``x0``, ``"batch *dims"``.
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class Scheduler:
    """State shared by every sampler: the cosine schedule and the inference timesteps.

    The first inference timestep is always ``n_train_timesteps - 1`` (``alpha_bar ~ 2e-9`` with
    the cosine schedule, so starting from ``N(0, I)`` is accurate; Lin et al. 2024) and the
    step after the last one lands on the clean sample
    (``alpha_bar = 1``, diffusers' ``set_alpha_to_one``); see :func:`inference_timesteps` for
    the spacing in between.

    Parameters
    ----------
    n_train_timesteps
        Length of the training schedule (must match the diffusion model's).
    prediction_type
        What the model outputs (must match the diffusion model's).
    clip_sample
        Clamp the ``x0`` estimate to ``[-clip_sample_range, clip_sample_range]`` before each
        update (off by default: standardised latents are not bounded).
    clip_sample_range
        Bound for ``clip_sample``.
    timestep_spacing
        ``"quadratic"`` (default) or ``"trailing"``; see :func:`inference_timesteps`.
    """

    order: int = 1

    def __init__(
        self,
        n_train_timesteps: int = 1000,
        prediction_type: PredictionType = "v_prediction",
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
        timestep_spacing: TimestepSpacing = "quadratic",
    ):
        check_prediction_type(prediction_type)
        inference_timesteps(n_train_timesteps, 1, timestep_spacing)  # validates the name
        self.n_train_timesteps = n_train_timesteps
        self.prediction_type: PredictionType = prediction_type
        self.clip_sample = clip_sample
        self.clip_sample_range = clip_sample_range
        self.timestep_spacing: TimestepSpacing = timestep_spacing
        self.alphas_cumprod = alphas_cumprod(cosine_betas(n_train_timesteps))
        self.timesteps = torch.empty(0, dtype=torch.long)
        self.n_steps: int | None = None

    def __len__(self) -> int:
        return self.n_train_timesteps

    def set_timesteps(self, n_steps: int) -> None:
        """Set ``self.timesteps``: ``n_steps`` descending long timesteps; reset solver state."""
        self.timesteps = inference_timesteps(self.n_train_timesteps, n_steps, self.timestep_spacing)
        self.n_steps = n_steps
        self._reset_state()

    def _reset_state(self) -> None:
        """Clear the state between steps (multistep samplers override this)."""

    def alpha_bar(self, timestep: int) -> float:
        """``alpha_bar`` at ``timestep`` in float64; 1 for ``timestep < 0`` (the clean sample)."""
        return float(self.alphas_cumprod[timestep]) if timestep >= 0 else 1.0

    def step_index(self, timestep: int | torch.Tensor) -> int:
        """Position of ``timestep`` in ``self.timesteps``."""
        hits = (self.timesteps == int(timestep)).nonzero()
        if not len(hits):
            raise ValueError(
                f"timestep {int(timestep)} is not in this schedule; call set_timesteps first"
            )
        return int(hits[0, 0])

    def previous_timestep(self, timestep: int | torch.Tensor) -> int:
        """The timestep the step from ``timestep`` lands on; ``-1`` after the last one."""
        i = self.step_index(timestep) + 1
        return int(self.timesteps[i]) if i < len(self.timesteps) else -1

    def convert_model_output(
        self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, epsilon)`` implied by ``model_output``; with ``clip_sample`` the clamped
        ``x0`` and the noise consistent with it (as diffusers' DDIM)."""
        ab = self.alpha_bar(timestep)
        x0 = predict_x0(sample, model_output, ab, self.prediction_type)
        if not self.clip_sample:
            return x0, predict_epsilon(sample, model_output, ab, self.prediction_type)
        x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        return x0, (sample - ab**0.5 * x0) / (1 - ab) ** 0.5

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """Forward process ``sqrt(ab_t) * x0 + sqrt(1 - ab_t) * noise``.

        Parameters
        ----------
        original_samples, noise
            ``"batch *dims"``.
        timesteps
            Long ``"batch"`` (or a scalar), in ``[0, n_train_timesteps)``.
        """
        ab = self.alphas_cumprod[torch.as_tensor(timesteps).long().cpu()]
        return add_noise(original_samples, noise, ab)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        """One step from ``timestep`` to :meth:`previous_timestep`.

        Parameters
        ----------
        model_output
            The denoiser's output at ``(sample, timestep)``, ``"batch *dims"``.
        timestep
            One of ``self.timesteps`` (the same for the whole batch).
        sample
            ``x_t``, ``"batch *dims"``.
        generator
            Source of the noise of stochastic samplers (ignored by deterministic ones).
        """
        raise NotImplementedError
