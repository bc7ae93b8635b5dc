"""Conditional diffusion: guidance algebra, seeded loss, set sharing, learning, sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nn_helpers import one_thread, perturbed  # noqa: F401  (one_thread: fixture)

from phenoseq.nn import ConditionalDiffusion, ConditionEncoder, Denoiser, make_scheduler


def small_diffusion(n_latent=3, n_features=4, seed=0, cross=True, **kw) -> ConditionalDiffusion:
    torch.manual_seed(seed)
    enc = ConditionEncoder(n_features, d_model=16, n_heads=2, n_layers=1, n_tokens=2)
    den = Denoiser(n_latent, 16, width=32, depth=2, use_cross_attention=cross, n_heads=2)
    return ConditionalDiffusion(den, enc, **kw)


@pytest.mark.parametrize("cross", [False, True])
def test_guidance_one_is_conditional_and_zero_unconditional(cross):
    diff = perturbed(small_diffusion(cross=cross)).eval()
    x, t = torch.randn(5, 3), torch.randint(0, 1000, (5,))
    pooled, tokens = diff.encode_condition(torch.randn(5, 4, 4))
    cond = diff.denoiser(x, t, pooled, tokens)
    uncond = diff.denoiser(x, t, *diff.null_condition(5))
    torch.testing.assert_close(diff.predict(x, t, pooled, tokens, 1.0), cond, rtol=0, atol=0)
    torch.testing.assert_close(diff.predict(x, t, pooled, tokens, 0.0), uncond, rtol=0, atol=0)
    guided = diff.predict(x, t, pooled, tokens, 3.0)
    torch.testing.assert_close(guided, uncond + 3 * (cond - uncond), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(cond, uncond)


def test_loss_is_seeded_and_set_index_shares_sets():
    diff = perturbed(small_diffusion())
    x0, cells = torch.randn(6, 3), torch.randn(2, 5, 4)
    index = torch.tensor([0, 0, 0, 1, 1, 1])

    def loss(**kw):
        return diff.loss(x0, generator=torch.Generator().manual_seed(0), **kw)

    shared = loss(cells=cells, set_index=index)
    assert shared.dim() == 0
    torch.testing.assert_close(shared, loss(cells=cells, set_index=index), rtol=0, atol=0)
    torch.testing.assert_close(shared, loss(cells=cells[index]))  # same draws, sets repeated


def test_full_condition_dropout_ignores_the_cells():
    diff = perturbed(small_diffusion(cond_drop_prob=1.0))
    x0 = torch.randn(4, 3)
    a = diff.loss(x0, torch.randn(4, 5, 4), generator=torch.Generator().manual_seed(0))
    b = diff.loss(x0, torch.randn(4, 5, 4), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_schedule_buffer_is_float64_and_not_saved():
    diff = small_diffusion(n_train_timesteps=50)
    assert diff.alphas_cumprod.dtype == torch.float64 and diff.alphas_cumprod.shape == (50,)
    assert "alphas_cumprod" not in diff.state_dict()
    assert {"null_pooled", "null_tokens"} <= set(diff.state_dict())


@pytest.mark.usefixtures("one_thread")
def test_diffusion_learns_a_conditional_toy_problem():
    """The latent is +-2 (first dim) with the sign of the cells' features: the loss falls
    over ~100 Adam steps, and the sampled latents follow their condition."""
    diff = small_diffusion(n_latent=2, n_features=2, cross=False, cond_drop_prob=0.1)
    opt = torch.optim.Adam(diff.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(120):
        sign = torch.randint(0, 2, (64,), generator=g).float() * 2 - 1
        cells = torch.randn(64, 3, 2, generator=g) * 0.3 + sign[:, None, None]
        x0 = torch.stack([2 * sign, torch.zeros(64)], -1) + 0.2 * torch.randn(64, 2, generator=g)
        loss = diff.loss(x0, cells, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:20])
    diff.eval()
    pooled, tokens = diff.encode_condition(torch.tensor([[[1.0, 1.0]], [[-1.0, -1.0]]]))
    z = diff.sample(pooled, tokens, "dpmpp_2m", 10, 1.0, g, n_per_condition=50)
    assert z.shape == (100, 2)
    assert z[:50, 0].mean() > 1.0 and z[50:, 0].mean() < -1.0


def test_sample_shapes_seed_and_scheduler_checks():
    diff = perturbed(small_diffusion()).eval()
    pooled, tokens = diff.encode_condition(torch.randn(3, 4, 4))

    def draw(seed, **kw):
        sched = kw.pop("scheduler", diff.make_scheduler("ddpm"))
        gen = torch.Generator().manual_seed(seed)
        return diff.sample(pooled, tokens, sched, 4, 2.0, gen, **kw)

    z = draw(0, n_per_condition=2)
    assert z.shape == (6, 3) and torch.isfinite(z).all()
    torch.testing.assert_close(z, draw(0, n_per_condition=2), rtol=0, atol=0)
    assert not torch.equal(z, draw(1, n_per_condition=2))
    with pytest.raises(ValueError, match="prediction_type"):
        draw(0, scheduler=make_scheduler("ddim", prediction_type="epsilon"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="prediction_type"):
        small_diffusion(prediction_type="score")
    with pytest.raises(ValueError, match="cond_drop_prob"):
        small_diffusion(cond_drop_prob=1.5)
