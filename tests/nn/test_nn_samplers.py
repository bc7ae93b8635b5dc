"""The sampler contract, shared by every sampler (diffusers style), and closed-form checks.

For data ``x0 ~ N(m, s^2 I)`` the optimal denoiser is known exactly:
``E[x0 | x_t] = m + a s^2 / (a^2 s^2 + b^2) * (x_t - a m)`` with ``a = sqrt(ab_t)``,
``b = sqrt(1 - ab_t)``. Driven by it, every sampler step is affine in ``x_t`` and in its own
noise, so the sampler's output is Gaussian with moments computed exactly from the recursion
(:func:`exact_moments`); the Monte-Carlo moments of the implementation must match them within a
few standard errors, and the recursion itself must approach ``N(m, s^2)`` at the step budget.
"""

from __future__ import annotations

import math

import numpy as np
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


def exact_moments(scheduler, n_steps: int, m: float = M, s: float = S) -> tuple[float, float]:
    """Mean and standard deviation of ``scheduler``'s output for data ``N(m, s^2)`` and the
    exact denoiser, from the sampler's recursion written out here in float64, independently of
    the implementation (its schedule and timesteps are taken from it; those are tested
    elsewhere). Every quantity is affine in independent standard normals: ``x_T`` and one noise
    per step; a vector holds the constant (entry 0) and the coefficient of each normal."""
    scheduler.set_timesteps(n_steps)
    ts = [int(t) for t in scheduler.timesteps]
    n = len(ts)

    def ab(t: int) -> float:
        return float(scheduler.alphas_cumprod[t]) if t >= 0 else 1.0

    def lam(t: int) -> float:  # log(alpha / sigma)
        return 0.5 * math.log(ab(t) / (1 - ab(t)))

    x = np.zeros(n + 2)
    x[1] = 1.0  # x_T ~ N(0, 1)
    last_x0, last_t = None, -1
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < n else -1
        a, b, ap = ab(t) ** 0.5, (1 - ab(t)) ** 0.5, ab(prev)
        c = a * s**2 / (a**2 * s**2 + b**2)
        x0 = c * x
        x0[0] += m - c * a * m  # E[x0 | x_t] = m + c (x_t - a m)
        eps = (x - a * x0) / b
        noise = np.eye(n + 2)[i + 2]  # this step's own N(0, 1)
        if isinstance(scheduler, DDPMScheduler):  # posterior q(x_prev | x_t, x0), Ho et al. 2020
            beta = 1 - ab(t) / ap
            x = (ap**0.5 * beta * x0 + (1 - beta) ** 0.5 * (1 - ap) * x) / (1 - ab(t))
            if prev >= 0:
                x = x + (beta * (1 - ap) / (1 - ab(t))) ** 0.5 * noise
        elif isinstance(scheduler, DDIMScheduler):  # Song et al. 2021, eq. 12
            sigma = scheduler.eta * ((1 - ap) / (1 - ab(t)) * (1 - ab(t) / ap)) ** 0.5
            x = ap**0.5 * x0 + max(1 - ap - sigma**2, 0.0) ** 0.5 * eps + sigma * noise
        elif isinstance(scheduler, DPMSolverMultistepScheduler):  # Lu et al. 2022, 2M midpoint
            if prev < 0:
                x = x0
            else:
                h, data = lam(prev) - lam(t), x0
                final = scheduler.lower_order_final and n < 15 and i == n - 2
                if last_x0 is not None and not final:
                    r = (lam(t) - lam(last_t)) / h
                    data = (1 + 0.5 / r) * x0 - 0.5 / r * last_x0
                x = ((1 - ap) / (1 - ab(t))) ** 0.5 * x - ap**0.5 * math.expm1(-h) * data
            last_x0, last_t = x0, t
        else:
            raise NotImplementedError(f"write the recursion of {type(scheduler).__name__} here")
    return float(x[0]), float(np.sqrt((x[1:] ** 2).sum()))


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
    def test_moments_are_those_of_the_exact_recursion(self, ptype):
        """Driven by the exact denoiser, the samples' mean and variance equal the recursion's
        exact ones within 3 standard errors of the Monte-Carlo estimates (2e5 Gaussian values:
        the SE of the variance is 0.32% of it: a 2% error in the output variance is 6 SE off),
        and at the step budget the recursion itself is within 3% of ``N(m, s^2)`` (the
        samplers' own discretisation error is 0.3-2.7% there)."""
        s = self.make(prediction_type=ptype)
        mean, sd = exact_moments(s, self.n_steps)
        assert abs(mean - M) < 1e-3 and abs(sd / S - 1) < 0.03, (mean, sd / S)
        x = run_loop(s, gaussian_denoiser(s), (100_000, 2), self.n_steps, seed=0).ravel()
        n = x.numel()
        se_mean, se_var = sd / n**0.5, sd**2 * (2 / (n - 1)) ** 0.5  # x is Gaussian
        assert abs(x.mean().item() - mean) < 3 * se_mean, (x.mean().item(), mean, se_mean)
        assert abs(x.var().item() - sd**2) < 3 * se_var, (x.var().item(), sd**2, se_var)


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
