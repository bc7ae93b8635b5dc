"""Pure PyTorch networks and samplers (no AnnData).

- :class:`ExpressionAutoencoder`: log1p expression -> latent -> NB / Gaussian likelihood.
- :class:`ConditionEncoder`: a set of morphology cells -> condition tokens + pooled vector.
- :class:`Denoiser`: adaLN-Zero residual MLP on the latent (knows nothing of the schedule).
- :class:`ConditionalDiffusion`: schedule buffer, condition dropout, classifier-free
  guidance, the training loss and the sampling loop.
- Samplers with diffusers' contract: :class:`DDPMScheduler`, :class:`DDIMScheduler`,
  :class:`DPMSolverMultistepScheduler` (``SAMPLERS``, :func:`make_scheduler`).
- :class:`EMA` of weights; schedule math in :mod:`phenoseq.nn.schedule`; likelihoods and
  seeded NB sampling in :mod:`phenoseq.nn.likelihoods`.
"""

from __future__ import annotations

from .autoencoder import ExpressionAutoencoder, Likelihood, LossOutput
from .condition import ConditionEncoder, ConditionOutput, WellConditionEncoder
from .denoiser import Denoiser, timestep_embedding
from .diffusion import ConditionalDiffusion
from .ema import EMA
from .likelihoods import gaussian_log_prob, nb_log_prob, sample_gamma, sample_nb
from .samplers import (
    SAMPLERS,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    SamplerName,
    Scheduler,
    SchedulerOutput,
    make_scheduler,
)
from .schedule import (
    PredictionType,
    add_noise,
    alphas_cumprod,
    cosine_betas,
    predict_epsilon,
    predict_x0,
    training_target,
    v_target,
)

__all__ = [
    "EMA",
    "SAMPLERS",
    "ConditionEncoder",
    "ConditionOutput",
    "ConditionalDiffusion",
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "Denoiser",
    "ExpressionAutoencoder",
    "Likelihood",
    "LossOutput",
    "PredictionType",
    "SamplerName",
    "Scheduler",
    "WellConditionEncoder",
    "SchedulerOutput",
    "add_noise",
    "alphas_cumprod",
    "cosine_betas",
    "gaussian_log_prob",
    "make_scheduler",
    "nb_log_prob",
    "predict_epsilon",
    "predict_x0",
    "sample_gamma",
    "sample_nb",
    "timestep_embedding",
    "training_target",
    "v_target",
]
