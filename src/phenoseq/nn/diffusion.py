"""Conditional latent diffusion: the denoiser and the condition encoder, plus the schedule,
condition dropout with a learned null condition, and classifier-free guidance.

Randomness comes only from explicit ``torch.Generator`` arguments (drawn on the generator's
device, so a CPU generator gives the same numbers for a model on GPU).
"""

from __future__ import annotations

import torch
from torch import nn

from . import _random
from .condition import ConditionEncoder, WellConditionEncoder
from .denoiser import Denoiser
from .samplers import Scheduler, make_scheduler
from .schedule import (
    PredictionType,
    add_noise,
    alphas_cumprod,
    check_prediction_type,
    cosine_betas,
    training_target,
)


class ConditionalDiffusion(nn.Module):
    """Training loss and sampling loop of a conditional diffusion model in latent space.

    Parameters
    ----------
    denoiser
        The network ``(sample, timesteps, pooled, tokens) -> output``.
    condition_encoder
        Conditions -> ``(pooled, tokens)``: sets of cells (:class:`ConditionEncoder`) or one
        vector per well (:class:`WellConditionEncoder`).
    prediction_type
        What the denoiser is trained to output.
    n_train_timesteps
        Length of the cosine schedule; ``alphas_cumprod`` is a (non-persistent) buffer.
    cond_drop_prob
        Probability of replacing a row's condition by the learned null condition in
        :meth:`loss` (part of the objective, so applied in eval mode too), which trains
        the unconditional model used by classifier-free guidance.
    """

    def __init__(
        self,
        denoiser: Denoiser,
        condition_encoder: ConditionEncoder | WellConditionEncoder,
        prediction_type: PredictionType = "v_prediction",
        n_train_timesteps: int = 1000,
        cond_drop_prob: float = 0.1,
    ):
        super().__init__()
        check_prediction_type(prediction_type)
        if not 0.0 <= cond_drop_prob <= 1.0:
            raise ValueError(f"cond_drop_prob must be in [0, 1], got {cond_drop_prob}")
        self.denoiser, self.condition_encoder = denoiser, condition_encoder
        self.prediction_type: PredictionType = prediction_type
        self.n_train_timesteps, self.cond_drop_prob = n_train_timesteps, cond_drop_prob
        self.n_latent = denoiser.n_latent
        ab = alphas_cumprod(cosine_betas(n_train_timesteps))
        self.register_buffer("alphas_cumprod", ab, persistent=False)
        d_model, n_tokens = condition_encoder.d_model, condition_encoder.n_tokens
        self.null_pooled = nn.Parameter(torch.zeros(d_model))
        self.null_tokens = nn.Parameter(torch.zeros(n_tokens, d_model))

    def encode_condition(
        self, cells: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pooled "batch d_model", tokens "batch n_tokens d_model")`` of conditions ``cells``
        (sets ``"batch n_set n_features"`` with ``mask`` ``"batch n_set"``, True = valid; or
        well vectors ``"batch n_inputs"``)."""
        pooled, tokens = self.condition_encoder(cells, mask)
        return pooled, tokens

    def null_condition(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned null condition, ``(pooled "batch d_model", tokens "batch n_tokens
        d_model")``."""
        return self.null_pooled.expand(batch, -1), self.null_tokens.expand(batch, -1, -1)

    def loss(
        self,
        x0: torch.Tensor,
        cells: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        set_index: torch.Tensor | None = None,
        rows: slice | None = None,
    ) -> torch.Tensor:
        """Mean squared error of the denoiser on its target, with condition dropout.

        Parameters
        ----------
        x0
            Clean latents ``"batch n_latent"``.
        cells
            Conditioning sets ``"n_sets n_set n_features"``; ``n_sets == batch`` unless
            ``set_index`` is given.
        mask
            ``"n_sets n_set"`` bool, True = valid cell.
        generator
            Source of the timesteps ``t ~ U{0..T-1}``, the noise and the dropout draws.
        set_index
            ``"batch"`` long: the set each row of ``x0`` is conditioned on (several latents
            may share one set, encoded once); default ``arange(batch)``.
        rows
            Keep only these rows after drawing the random numbers of the whole batch (one
            rank's share under data parallelism: N ranks then see one process's batch).

        Returns
        -------
        Scalar loss.
        """
        b, dev = len(x0), x0.device
        t = _random.randint(self.n_train_timesteps, (b,), generator, dev)
        noise = _random.randn(tuple(x0.shape), generator, dev, x0.dtype)
        drop = _random.rand((b,), generator, dev) < self.cond_drop_prob
        if rows is not None:
            idx = torch.arange(b, device=dev) if set_index is None else set_index
            x0, t, noise, drop, set_index = x0[rows], t[rows], noise[rows], drop[rows], idx[rows]
            b = len(x0)
        ab = self.alphas_cumprod[t]
        x_t = add_noise(x0, noise, ab)
        pooled, tokens = self.encode_condition(cells, mask)
        if set_index is not None:
            pooled, tokens = pooled[set_index], tokens[set_index]
        null_pooled, null_tokens = self.null_condition(b)
        pooled = torch.where(drop[:, None], null_pooled, pooled)
        tokens = torch.where(drop[:, None, None], null_tokens, tokens)
        target = training_target(x0, noise, ab, self.prediction_type)
        return nn.functional.mse_loss(self.denoiser(x_t, t, pooled, tokens), target)

    def predict(
        self,
        sample: torch.Tensor,
        timesteps: torch.Tensor | int,
        pooled: torch.Tensor,
        tokens: torch.Tensor | None,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """Denoiser output with classifier-free guidance, ``"batch n_latent"``.

        ``null + guidance * (cond - null)``: ``guidance=1`` is exactly the conditional
        prediction (the null branch is not computed), ``guidance=0`` exactly the
        unconditional one; otherwise both branches run as one batch.

        Parameters
        ----------
        sample
            ``"batch n_latent"``.
        timesteps
            ``"batch"`` or an int for the whole batch.
        pooled, tokens
            Condition ``"batch d_model"`` and ``"batch n_tokens d_model"`` (tokens may be
            None when the denoiser does not cross-attend).
        guidance
            Classifier-free guidance scale.
        """
        b = len(sample)
        t = torch.as_tensor(timesteps, device=sample.device).long().expand(b)
        if guidance == 1.0:
            return self.denoiser(sample, t, pooled, tokens)
        null_pooled, null_tokens = self.null_condition(b)
        if tokens is None:
            null_tokens = None
        if guidance == 0.0:
            return self.denoiser(sample, t, null_pooled, null_tokens)
        both_tokens = None if tokens is None else torch.cat([tokens, null_tokens])
        both = self.denoiser(
            torch.cat([sample, sample]), torch.cat([t, t]), torch.cat([pooled, null_pooled]),
            both_tokens,
        )  # fmt: skip
        cond, null = both.chunk(2)
        return null + guidance * (cond - null)

    def make_scheduler(self, name: str = "dpmpp_2m", **kwargs) -> Scheduler:
        """A sampler by name with this model's ``n_train_timesteps`` and ``prediction_type``."""
        return make_scheduler(
            name,
            n_train_timesteps=self.n_train_timesteps,
            prediction_type=self.prediction_type,
            **kwargs,
        )

    @torch.no_grad()
    def sample(
        self,
        pooled: torch.Tensor,
        tokens: torch.Tensor | None,
        scheduler: Scheduler | str = "dpmpp_2m",
        n_steps: int = 20,
        guidance: float = 1.0,
        generator: torch.Generator | None = None,
        *,
        n_per_condition: int = 1,
    ) -> torch.Tensor:
        """Latents drawn by the full sampler loop from ``x_T ~ N(0, I)``.

        Parameters
        ----------
        pooled, tokens
            Conditions ``"n_conditions d_model"`` and ``"n_conditions n_tokens d_model"``
            (from :meth:`encode_condition`; tokens may be None without cross-attention).
        scheduler
            A :class:`~phenoseq.nn.Scheduler` (its ``prediction_type`` and
            ``n_train_timesteps`` must match this model's) or a sampler name.
        n_steps
            Sampler steps (model evaluations; twice that with guidance not in {0, 1}).
        guidance
            Classifier-free guidance scale (see :meth:`predict`).
        generator
            Source of the initial noise and of stochastic samplers' noise.
        n_per_condition
            Draws per condition.

        Returns
        -------
        ``"n_conditions * n_per_condition n_latent"``, condition-major (rows
        ``i * n_per_condition ... (i + 1) * n_per_condition - 1`` belong to condition ``i``).
        """
        scheduler = self._checked_scheduler(scheduler)
        pooled = pooled.repeat_interleave(n_per_condition, dim=0)
        if tokens is not None:
            tokens = tokens.repeat_interleave(n_per_condition, dim=0)
        shape = (len(pooled), self.n_latent)
        x = _random.randn(shape, generator, pooled.device, pooled.dtype)
        scheduler.set_timesteps(n_steps)
        for t in scheduler.timesteps:
            out = self.predict(x, int(t), pooled, tokens, guidance)
            x = scheduler.step(out, t, x, generator=generator).prev_sample
        return x

    def _checked_scheduler(self, scheduler: Scheduler | str) -> Scheduler:
        if isinstance(scheduler, str):
            return self.make_scheduler(scheduler)
        if (scheduler.prediction_type, scheduler.n_train_timesteps) != (
            self.prediction_type,
            self.n_train_timesteps,
        ):
            raise ValueError(
                f"scheduler has prediction_type={scheduler.prediction_type!r}, "
                f"n_train_timesteps={scheduler.n_train_timesteps}; the model was trained with "
                f"{self.prediction_type!r}, {self.n_train_timesteps}; "
                "use ConditionalDiffusion.make_scheduler"
            )
        return scheduler
