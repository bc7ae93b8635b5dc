"""Pure PyTorch networks and samplers (no AnnData): autoencoder, condition encoder, denoiser,
conditional diffusion, EMA, and the DDPM / DDIM / DPM-Solver++ 2M samplers."""

from __future__ import annotations

from .autoencoder import ExpressionAutoencoder, LossOutput, nb_log_prob, sample_gamma, sample_nb
from .condition import ConditionEncoder
from .denoiser import Denoiser, timestep_embedding
from .diffusion import ConditionalDiffusion
from .ema import EMA
from .samplers import (
    SAMPLERS,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    Scheduler,
    SchedulerOutput,
    make_scheduler,
)
from .schedule import alphas_cumprod, cosine_betas, predict_epsilon, predict_x0, training_target

__all__ = [
    "EMA",
    "SAMPLERS",
    "ConditionEncoder",
    "ConditionalDiffusion",
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "Denoiser",
    "ExpressionAutoencoder",
    "LossOutput",
    "Scheduler",
    "SchedulerOutput",
    "alphas_cumprod",
    "cosine_betas",
    "make_scheduler",
    "nb_log_prob",
    "predict_epsilon",
    "predict_x0",
    "sample_gamma",
    "sample_nb",
    "timestep_embedding",
    "training_target",
]
