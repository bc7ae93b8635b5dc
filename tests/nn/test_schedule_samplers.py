"""Schedule invariants and the sampler contract, shared by every sampler (diffusers style)."""

from __future__ import annotations

import pytest
import torch

from phenoseq.nn import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    alphas_cumprod,
    cosine_betas,
    make_scheduler,
    predict_epsilon,
    predict_x0,
    training_target,
)


def test_cosine_schedule_invariants():
    ab = alphas_cumprod(cosine_betas(1000))
    assert ab.dtype == torch.float64 and ab.shape == (1000,)
    assert (ab > 0).all() and (ab < 1).all() and (ab.diff() < 0).all()
    assert ab[0] > 0.999 and ab[-1] < 1e-3


@pytest.mark.parametrize("ptype", ["epsilon", "v_prediction", "sample"])
def test_prediction_conversions_roundtrip(ptype):
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    ab = torch.tensor([0.3, 0.5, 0.7, 0.9, 0.99], dtype=torch.float64)
    x_t = ab.sqrt().float()[:, None] * x0 + (1 - ab).sqrt().float()[:, None] * noise
    target = training_target(x0, noise, ab, ptype)
    torch.testing.assert_close(predict_x0(x_t, target, ab, ptype), x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(predict_epsilon(x_t, target, ab, ptype), noise, atol=1e-5, rtol=1e-5)


def gaussian_denoiser(scheduler, m: float, s: float):
    """The exact model output for data x0 ~ N(m, s^2 I): posterior mean of x0 given x_t."""

    def model(x, t: int):
        ab = scheduler.alpha_bar(t).float()
        a, b = ab.sqrt(), (1 - ab).sqrt()
        x0 = m + a * s**2 / (a**2 * s**2 + b**2) * (x - a * m)
        eps = (x - a * x0) / b
        return {"epsilon": eps, "v_prediction": a * eps - b * x0, "sample": x0}[
            scheduler.prediction_type
        ]

    return model


def run_loop(scheduler, model, n: int, n_steps: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    scheduler.set_timesteps(n_steps)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, int(t)), int(t), x, generator=g).prev_sample
    return x


class SamplerContract:
    """Every sampler's tests subclass this and set ``cls`` and ``n_steps`` (accuracy budget)."""

    cls: type
    n_steps: int

    def make(self, **kw):
        return self.cls(**kw)

    def test_timesteps(self):
        s = self.make()
        s.set_timesteps(7)
        ts = s.timesteps
        assert len(ts) == 7 and ts[0] == 999 and (ts.diff() < 0).all() and ts[-1] >= 0

    def test_step_shapes(self):
        s = self.make()
        s.set_timesteps(5)
        x = torch.randn(4, 3)
        out = s.step(torch.randn(4, 3), int(s.timesteps[0]), x, torch.Generator().manual_seed(0))
        assert out.prev_sample.shape == x.shape and out.pred_original_sample.shape == x.shape

    def test_add_noise(self):
        s = self.make()
        x0, noise, t = torch.randn(3, 2), torch.randn(3, 2), torch.tensor([0, 500, 999])
        ab = s.alphas_cumprod[t].float()[:, None]
        torch.testing.assert_close(
            s.add_noise(x0, noise, t), ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        )

    def test_same_seed_same_output(self):
        s = self.make()
        model = gaussian_denoiser(s, 1.0, 0.5)
        a, b = run_loop(s, model, 64, 6, seed=3), run_loop(s, model, 64, 6, seed=3)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert not torch.equal(a, run_loop(s, model, 64, 6, seed=4))

    @pytest.mark.parametrize("ptype", ["epsilon", "v_prediction"])
    def test_closed_form_gaussian(self, ptype):
        """With the exact denoiser, samples follow the data distribution N(m, s^2)."""
        s = self.make(prediction_type=ptype)
        m, sd = 2.0, 0.5
        x = run_loop(s, gaussian_denoiser(s, m, sd), 4000, self.n_steps, seed=0)
        assert abs(x.mean().item() - m) < 0.05
        assert abs(x.std().item() / sd - 1) < 0.08


class TestDDPM(SamplerContract):
    cls, n_steps = DDPMScheduler, 100


class TestDDIM(SamplerContract):
    cls, n_steps = DDIMScheduler, 50


class TestDDIMStochastic(SamplerContract):
    cls, n_steps = DDIMScheduler, 100

    def make(self, **kw):
        return DDIMScheduler(eta=1.0, **kw)


class TestDPMSolver(SamplerContract):
    cls, n_steps = DPMSolverMultistepScheduler, 10


def test_dpmpp_beats_ddim_at_few_steps():
    """The second-order solver is more accurate than first-order DDIM at 5 steps."""
    m, sd = 2.0, 0.5
    errs = {}
    for name in ("ddim", "dpmpp_2m"):
        s = make_scheduler(name)
        x = run_loop(s, gaussian_denoiser(s, m, sd), 4000, 5, seed=0)
        errs[name] = abs(x.std().item() - sd) + abs(x.mean().item() - m)
    assert errs["dpmpp_2m"] < errs["ddim"]


def test_make_scheduler_unknown():
    with pytest.raises(ValueError, match="unknown sampler"):
        make_scheduler("euler")
