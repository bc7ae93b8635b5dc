"""Conditional latent diffusion: the denoiser and condition encoder plus the schedule,
condition dropout with a learned null condition, and classifier-free guidance."""

from __future__ import annotations

import torch
from torch import nn

from .samplers import Scheduler
from .schedule import PredictionType, alphas_cumprod, cosine_betas, training_target


class ConditionalDiffusion(nn.Module):
    """Training loss and sampling loop over a :class:`~phenoseq.nn.Denoiser`.

    Guidance: ``null + guidance * (cond - null)``; ``guidance=1`` is exactly the conditional
    prediction (the null branch is not computed), ``guidance=0`` the unconditional one.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        condition_encoder: nn.Module,
        prediction_type: PredictionType = "v_prediction",
        n_train_timesteps: int = 1000,
        cond_drop_prob: float = 0.1,
    ):
        super().__init__()
        self.denoiser, self.condition_encoder = denoiser, condition_encoder
        self.prediction_type, self.n_train_timesteps = prediction_type, n_train_timesteps
        self.cond_drop_prob = cond_drop_prob
        ab = alphas_cumprod(cosine_betas(n_train_timesteps))
        self.register_buffer("alphas_cumprod", ab.float(), persistent=False)
        d_model, n_tokens = condition_encoder.seeds.shape[1], condition_encoder.seeds.shape[0]
        self.null_pooled = nn.Parameter(torch.zeros(d_model))
        self.null_tokens = nn.Parameter(torch.zeros(n_tokens, d_model))

    def encode_condition(self, cells: torch.Tensor, mask: torch.Tensor | None = None):
        """``(pooled "batch d_model", tokens "batch n_tokens d_model")`` of cell sets."""
        tokens, pooled = self.condition_encoder(cells, mask)
        return pooled, tokens

    def null_condition(self, batch: int):
        return (self.null_pooled.expand(batch, -1),
                self.null_tokens.expand(batch, -1, -1))  # fmt: skip

    def loss(self, x0, cells, mask=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """MSE of the denoiser on its target at random timesteps, with condition dropout."""
        b = len(x0)
        t = torch.randint(0, self.n_train_timesteps, (b,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        ab = self.alphas_cumprod[t].unsqueeze(-1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        pooled, tokens = self.encode_condition(cells, mask)
        drop = torch.rand(b, generator=generator) < self.cond_drop_prob
        null_p, null_t = self.null_condition(b)
        pooled = torch.where(drop[:, None], null_p, pooled)
        tokens = torch.where(drop[:, None, None], null_t, tokens)
        pred = self.denoiser(x_t, t, pooled, tokens)
        return (
            (pred - training_target(x0, noise, self.alphas_cumprod[t], self.prediction_type)) ** 2
        ).mean()

    def predict(self, sample, t, pooled, tokens, guidance: float = 1.0) -> torch.Tensor:
        """Model output with classifier-free guidance."""
        if guidance == 1.0:
            return self.denoiser(sample, t, pooled, tokens)
        null_p, null_t = self.null_condition(len(sample))
        if guidance == 0.0:
            return self.denoiser(sample, t, null_p, null_t)
        both = self.denoiser(torch.cat([sample, sample]), torch.cat([t, t]),
                             torch.cat([pooled, null_p]), torch.cat([tokens, null_t]))  # fmt: skip
        cond, null = both.chunk(2)
        return null + guidance * (cond - null)

    @torch.no_grad()
    def sample(
        self,
        pooled: torch.Tensor,
        tokens: torch.Tensor,
        scheduler: Scheduler,
        n_steps: int = 20,
        guidance: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One latent ``"batch n_latent"`` per condition row, by the full sampler loop."""
        n_latent = self.denoiser.out.out_features
        x = torch.randn((len(pooled), n_latent), generator=generator)
        scheduler.set_timesteps(n_steps)
        for t in scheduler.timesteps:
            tt = torch.full((len(x),), int(t), dtype=torch.long)
            out = self.predict(x, tt, pooled, tokens, guidance)
            x = scheduler.step(out, int(t), x, generator).prev_sample
        return x
