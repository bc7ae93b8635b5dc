"""Noise-schedule constants and prediction conversions: small pure functions in float64.

Notation (diffusers'): ``alpha_bar_t = alphas_cumprod[t]`` and the forward process
``x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise``. A denoiser predicts one of

- ``"epsilon"``: the noise;
- ``"v_prediction"``: ``v = sqrt(alpha_bar_t) * noise - sqrt(1 - alpha_bar_t) * x0``
  (Salimans & Ho 2022), well scaled at every noise level;
- ``"sample"``: ``x0`` itself.

Coefficients are formed in float64 and cast to the sample's dtype and device at the end.
"""

from __future__ import annotations

import math
from typing import get_args

import torch

from ..config import PredictionType

PREDICTION_TYPES: tuple[str, ...] = get_args(PredictionType)


def check_prediction_type(prediction_type: str) -> None:
    """Raise ``ValueError`` unless ``prediction_type`` is one of :data:`PREDICTION_TYPES`."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(
            f"unknown prediction_type {prediction_type!r}; choose from {PREDICTION_TYPES}"
        )


def cosine_betas(
    n_train_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999
) -> torch.Tensor:
    """Betas ``"n_train_timesteps"`` (float64) of the cosine schedule (Nichol & Dhariwal 2021).

    ``alpha_bar(u) = cos((u + s) / (1 + s) * pi / 2) ** 2`` on ``u in [0, 1]`` and
    ``beta_i = min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta)``; the clip keeps
    the last steps from being singular.
    """
    if n_train_timesteps < 1:
        raise ValueError("n_train_timesteps must be >= 1")
    u = torch.arange(n_train_timesteps + 1, dtype=torch.float64) / n_train_timesteps
    alpha_bar = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """``alpha_bar_t = prod_{i <= t} (1 - beta_i)``, ``"n_train_timesteps"`` float64."""
    return torch.cumprod(1.0 - betas.double(), dim=0)


def _coefficients(
    alpha_bar_t: torch.Tensor | float, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sqrt(alpha_bar_t)`` and ``sqrt(1 - alpha_bar_t)`` shaped to broadcast over ``like``.

    ``alpha_bar_t`` is a scalar or has shape ``"batch"`` (one noise level per row).
    """
    ab = torch.as_tensor(alpha_bar_t, dtype=torch.float64)
    a, b = ab.sqrt(), (1 - ab).sqrt()
    shape = ab.shape + (1,) * (like.dim() - ab.dim())
    cast = {"dtype": like.dtype, "device": like.device}
    return a.reshape(shape).to(**cast), b.reshape(shape).to(**cast)


def add_noise(
    original_samples: torch.Tensor, noise: torch.Tensor, alpha_bar_t: torch.Tensor | float
) -> torch.Tensor:
    """Forward process ``sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise``.

    ``original_samples`` and ``noise`` are ``"batch *dims"``; ``alpha_bar_t`` a scalar or
    ``"batch"``.
    """
    a, b = _coefficients(alpha_bar_t, original_samples)
    return a * original_samples + b * noise


def predict_x0(
    sample: torch.Tensor,
    model_output: torch.Tensor,
    alpha_bar_t: torch.Tensor | float,
    prediction_type: PredictionType,
) -> torch.Tensor:
    """The clean sample implied by ``model_output`` at noise level ``alpha_bar_t``.

    Parameters
    ----------
    sample
        Noisy ``x_t``, ``"batch *dims"``.
    model_output
        The denoiser's output, same shape as ``sample``.
    alpha_bar_t
        Scalar or ``"batch"``.
    prediction_type
        What ``model_output`` predicts.

    Returns
    -------
    ``x0`` estimate, same shape and dtype as ``sample``.
    """
    check_prediction_type(prediction_type)
    a, b = _coefficients(alpha_bar_t, sample)
    if prediction_type == "epsilon":
        return (sample - b * model_output) / a
    if prediction_type == "v_prediction":
        return a * sample - b * model_output
    return model_output


def predict_epsilon(
    sample: torch.Tensor,
    model_output: torch.Tensor,
    alpha_bar_t: torch.Tensor | float,
    prediction_type: PredictionType,
) -> torch.Tensor:
    """The noise implied by ``model_output`` at noise level ``alpha_bar_t``.

    Shapes as :func:`predict_x0`. For ``"sample"`` this divides by ``sqrt(1 - alpha_bar_t)``,
    which is ill-conditioned at the smallest timesteps.
    """
    check_prediction_type(prediction_type)
    a, b = _coefficients(alpha_bar_t, sample)
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "v_prediction":
        return b * sample + a * model_output
    return (sample - a * model_output) / b


def v_target(
    x0: torch.Tensor, noise: torch.Tensor, alpha_bar_t: torch.Tensor | float
) -> torch.Tensor:
    """Velocity ``v = sqrt(alpha_bar_t) * noise - sqrt(1 - alpha_bar_t) * x0``, shape of ``x0``."""
    a, b = _coefficients(alpha_bar_t, x0)
    return a * noise - b * x0


def training_target(
    x0: torch.Tensor,
    noise: torch.Tensor,
    alpha_bar_t: torch.Tensor | float,
    prediction_type: PredictionType,
) -> torch.Tensor:
    """What the denoiser regresses on: ``noise``, :func:`v_target` or ``x0``.

    Equivalently, the model output that :func:`predict_x0` maps back to ``x0``.
    """
    check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return v_target(x0, noise, alpha_bar_t)
    return x0
