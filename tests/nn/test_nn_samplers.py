"""The sampler contract, shared by every sampler (diffusers style), and closed-form checks.

For data ``x0 ~ N(m, s^2 I)`` the optimal denoiser is known exactly:
``E[x0 | x_t] = m + a s^2 / (a^2 s^2 + b^2) * (x_t - a m)`` with ``a = sqrt(ab_t)``,
``b = sqrt(1 - ab_t)``; a correct sampler driven by it must return samples with mean ``m``
and standard deviation ``s``.
"""

from __future__ import annotations

import pytest
import torch

from phenoseq.nn import (
    SAMPLERS,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    make_scheduler,
    predict_x0,
    training_target,
)
from phenoseq.nn.samplers.base import inference_timesteps

M, S = 2.0, 0.5


def gaussian_denoiser(scheduler, m: float = M, s: float = S):
    """The exact model output for data ``x0 ~ N(m, s^2 I)``."""

    def model(x: torch.Tensor, t: int) -> torch.Tensor:
        ab = scheduler.alpha_bar(int(t))
        a, b = ab**0.5, (1 - ab) ** 0.5
        x0 = m + a * s**2 / (a**2 * s**2 + b**2) * (x - a * m)
        return training_target(x0, (x - a * x0) / b, ab, scheduler.prediction_type)

    return model


def mixture_denoiser(scheduler, centers=(-1.5, 1.5), s: float = 0.2):
    """The exact model output for an equal mixture of ``N(c_k, s^2)`` (1-d data)."""
    c = torch.tensor(centers, dtype=torch.float64)

    def model(x: torch.Tensor, t: int) -> torch.Tensor:
        ab = scheduler.alpha_bar(int(t))
        a, b = ab**0.5, (1 - ab) ** 0.5
        var = a**2 * s**2 + b**2
        w = torch.softmax(-0.5 * (x[..., None] - a * c) ** 2 / var, dim=-1)
        x0 = (w * (c + a * s**2 / var * (x[..., None] - a * c))).sum(-1)
        return training_target(x0, (x - a * x0) / b, ab, scheduler.prediction_type)

    return model


def run_loop(scheduler, model, shape, n_steps: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    scheduler.set_timesteps(n_steps)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t), t, x, generator=g).prev_sample
    return x


class SamplerContract:
    """Every sampler's tests subclass this, setting ``cls``, ``kwargs`` and ``n_steps`` (the
    step budget at which the closed-form check must pass)."""

    cls: type
    kwargs: dict = {}
    n_steps: int

    def make(self, **kw):
        return self.cls(**(self.kwargs | kw))

    @pytest.mark.parametrize("n_steps", [1, 7, 1000])
    def test_timesteps_descending_of_requested_length(self, n_steps):
        s = self.make()
        s.set_timesteps(n_steps)
        ts = s.timesteps
        assert ts.dtype == torch.long and len(ts) == n_steps
        assert ts[0] == 999 and (ts.diff() < 0).all() and ts[-1] >= 0

    def test_step_shapes_and_x0(self):
        s = self.make()
        s.set_timesteps(5)
        x, out = torch.randn(4, 3), torch.randn(4, 3)
        t = s.timesteps[0]
        res = s.step(out, t, x, generator=torch.Generator().manual_seed(0))
        assert res.prev_sample.shape == x.shape and res.prev_sample.dtype == x.dtype
        expected = predict_x0(x, out, s.alphas_cumprod[t], s.prediction_type)
        torch.testing.assert_close(res.pred_original_sample, expected)

    def test_add_noise(self):
        s = self.make()
        x0, noise, t = torch.randn(3, 2), torch.randn(3, 2), torch.tensor([0, 500, 999])
        ab = s.alphas_cumprod[t].float()[:, None]
        expected = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        torch.testing.assert_close(s.add_noise(x0, noise, t), expected)

    def test_same_seed_same_output(self):
        s = self.make()
        model = gaussian_denoiser(s)
        a = run_loop(s, model, (64, 2), 6, seed=3)
        torch.testing.assert_close(a, run_loop(s, model, (64, 2), 6, seed=3), rtol=0, atol=0)
        assert not torch.equal(a, run_loop(s, model, (64, 2), 6, seed=4))

    def test_timestep_not_in_schedule(self):
        s = self.make()
        s.set_timesteps(4)
        with pytest.raises(ValueError, match="not in this schedule"):
            s.step(torch.zeros(2), 998, torch.zeros(2))

    @pytest.mark.parametrize("ptype", ["epsilon", "v_prediction", "sample"])
    def test_closed_form_gaussian(self, ptype):
        """Driven by the exact denoiser, the samples follow N(m, s^2)."""
        s = self.make(prediction_type=ptype)
        x = run_loop(s, gaussian_denoiser(s), (4000, 2), self.n_steps, seed=0)
        assert abs(x.mean().item() - M) < 0.03
        assert abs(x.std().item() / S - 1) < 0.06


class TestDDPM(SamplerContract):
    cls, n_steps = DDPMScheduler, 100


class TestDDIM(SamplerContract):
    cls, n_steps = DDIMScheduler, 50


class TestDDIMStochastic(SamplerContract):
    cls, kwargs, n_steps = DDIMScheduler, {"eta": 1.0}, 100


class TestDPMSolver(SamplerContract):
    cls, n_steps = DPMSolverMultistepScheduler, 10


class TestDPMSolverTrailing(SamplerContract):
    cls, kwargs, n_steps = DPMSolverMultistepScheduler, {"timestep_spacing": "trailing"}, 20


def test_dpmpp_more_accurate_than_ddim_at_few_steps():
    errors = {}
    for name in ("ddim", "dpmpp_2m"):
        s = make_scheduler(name)
        x = run_loop(s, gaussian_denoiser(s), (4000, 2), 10, seed=0)
        errors[name] = abs(x.std().item() / S - 1) + abs(x.mean().item() - M)
    assert errors["dpmpp_2m"] < 0.05 < errors["ddim"]


@pytest.mark.parametrize("n_steps", [10, 20])
def test_dpmpp_resolves_a_narrow_bimodal_distribution(n_steps):
    s = make_scheduler("dpmpp_2m")
    x = run_loop(s, mixture_denoiser(s), (8000,), n_steps, seed=0)
    assert abs((x > 0).double().mean().item() - 0.5) < 0.03
    within = x - 1.5 * torch.sign(x)
    assert abs(within.mean().item()) < 0.02 and abs(within.std().item() / 0.2 - 1) < 0.1


def test_ddim_eta_one_is_ddpm():
    """DDIM's eta=1 variance is DDPM's posterior variance: same noise, same samples."""
    ddpm, ddim = DDPMScheduler(), DDIMScheduler(eta=1.0)
    a = run_loop(ddpm, gaussian_denoiser(ddpm), (16, 2), 8, seed=0)
    b = run_loop(ddim, gaussian_denoiser(ddim), (16, 2), 8, seed=0)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["ddim", "dpmpp_2m"])
def test_deterministic_samplers_ignore_the_generator(name):
    s = make_scheduler(name)
    s.set_timesteps(3)
    x, out = torch.randn(4, 2), torch.randn(4, 2)
    a = s.step(out, s.timesteps[0], x, torch.Generator().manual_seed(0)).prev_sample
    s.set_timesteps(3)
    b = s.step(out, s.timesteps[0], x, torch.Generator().manual_seed(1)).prev_sample
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_dpmpp_set_timesteps_resets_history():
    s = DPMSolverMultistepScheduler()
    model = gaussian_denoiser(s)
    fresh = run_loop(s, model, (32, 2), 8, seed=0)
    s.set_timesteps(8)  # an abandoned half loop leaves history behind ...
    x = torch.randn(32, 2, dtype=torch.float64)
    for t in s.timesteps[:4]:
        x = s.step(model(x, t), t, x).prev_sample
    torch.testing.assert_close(run_loop(s, model, (32, 2), 8, seed=0), fresh, rtol=0, atol=0)


def test_dpmpp_final_step_returns_x0():
    s = DPMSolverMultistepScheduler()
    s.set_timesteps(3)
    x, out = torch.randn(4, 2), torch.randn(4, 2)
    res = s.step(out, s.timesteps[-1], x)
    torch.testing.assert_close(res.prev_sample, res.pred_original_sample)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_clip_sample_bounds_x0(name):
    s = make_scheduler(name, clip_sample=True, clip_sample_range=0.5)
    s.set_timesteps(4)
    res = s.step(10 * torch.randn(64, 2), s.timesteps[1], torch.randn(64, 2))
    assert res.pred_original_sample.abs().max() <= 0.5


def test_inference_timesteps_spacings():
    assert inference_timesteps(1000, 4, "trailing").tolist() == [999, 749, 499, 249]
    assert inference_timesteps(1000, 3, "quadratic").tolist() == [999, 250, 0]
    assert inference_timesteps(10, 10).tolist() == list(range(9, -1, -1))
    with pytest.raises(ValueError, match="n_steps"):
        inference_timesteps(1000, 1001)
    with pytest.raises(ValueError, match="timestep_spacing"):
        DDIMScheduler(timestep_spacing="leading")


def test_make_scheduler_registry():
    assert set(SAMPLERS) == {"ddpm", "ddim", "dpmpp_2m"}
    s = make_scheduler("ddim", prediction_type="epsilon", eta=0.5)
    assert isinstance(s, DDIMScheduler) and s.eta == 0.5 and s.prediction_type == "epsilon"
    with pytest.raises(ValueError, match="unknown sampler"):
        make_scheduler("euler")
