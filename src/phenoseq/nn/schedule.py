"""Noise-schedule constants and prediction conversions: small pure functions, float64."""

from __future__ import annotations

import math
from typing import Literal

import torch

PredictionType = Literal["epsilon", "v_prediction", "sample"]


def cosine_betas(n_train_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999):
    """Betas of the cosine schedule (Nichol & Dhariwal 2021), ``"n_train_timesteps"`` float64."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2

    n = n_train_timesteps
    betas = [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)]
    return torch.tensor(betas, dtype=torch.float64)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """Cumulative product of ``1 - betas`` (``alpha_bar_t``), float64."""
    return torch.cumprod(1.0 - betas.double(), dim=0)


def _coefs(alpha_bar: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = alpha_bar.to(like.dtype).sqrt()
    b = (1 - alpha_bar).to(like.dtype).sqrt()
    while a.dim() < like.dim():
        a, b = a.unsqueeze(-1), b.unsqueeze(-1)
    return a, b


def predict_x0(sample, model_output, alpha_bar, prediction_type: PredictionType):
    """The clean sample implied by a model output at noise level ``alpha_bar``."""
    a, b = _coefs(alpha_bar, sample)
    if prediction_type == "epsilon":
        return (sample - b * model_output) / a
    if prediction_type == "v_prediction":
        return a * sample - b * model_output
    if prediction_type == "sample":
        return model_output
    raise ValueError(f"unknown prediction_type {prediction_type!r}")


def predict_epsilon(sample, model_output, alpha_bar, prediction_type: PredictionType):
    """The noise implied by a model output at noise level ``alpha_bar``."""
    a, b = _coefs(alpha_bar, sample)
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "v_prediction":
        return b * sample + a * model_output
    if prediction_type == "sample":
        return (sample - a * model_output) / b
    raise ValueError(f"unknown prediction_type {prediction_type!r}")


def training_target(x0, noise, alpha_bar, prediction_type: PredictionType):
    """What the denoiser regresses on: ``noise``, ``v = a*noise - b*x0`` or ``x0``."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        a, b = _coefs(alpha_bar, x0)
        return a * noise - b * x0
    if prediction_type == "sample":
        return x0
    raise ValueError(f"unknown prediction_type {prediction_type!r}")
