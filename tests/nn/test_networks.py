"""Networks: shapes, permutation invariance, masks, NB likelihood, guidance, EMA, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from phenoseq.nn import (
    EMA,
    ConditionalDiffusion,
    ConditionEncoder,
    Denoiser,
    ExpressionAutoencoder,
    make_scheduler,
    nb_log_prob,
    sample_nb,
)


def small_diffusion(n_latent=3, n_features=4, seed=0, **kw) -> ConditionalDiffusion:
    torch.manual_seed(seed)
    enc = ConditionEncoder(n_features, d_model=16, n_heads=2, n_layers=1, n_tokens=2)
    den = Denoiser(n_latent, 16, width=32, depth=2, **kw)
    return ConditionalDiffusion(den, enc, cond_drop_prob=0.2)


def test_condition_encoder_permutation_invariant_and_mask():
    torch.manual_seed(0)
    enc = ConditionEncoder(5, d_model=16, n_heads=2, n_layers=2, n_tokens=3).eval()
    cells = torch.randn(2, 7, 5)
    tokens, pooled = enc(cells)
    assert tokens.shape == (2, 3, 16) and pooled.shape == (2, 16)
    perm = torch.randperm(7)
    torch.testing.assert_close(enc(cells[:, perm])[1], pooled, atol=1e-5, rtol=1e-5)
    padded = torch.cat([cells, 100 * torch.randn(2, 4, 5)], dim=1)
    mask = torch.cat([torch.ones(2, 7), torch.zeros(2, 4)], dim=1).bool()
    torch.testing.assert_close(enc(padded, mask)[1], pooled, atol=1e-5, rtol=1e-5)
    assert enc(cells[:, :1])[1].shape == (2, 16)  # N = 1 works
    assert enc(torch.randn(1, 300, 5))[1].shape == (1, 16)  # and hundreds


@pytest.mark.parametrize("cross", [False, True])
def test_denoiser_shapes(cross):
    den = Denoiser(6, 16, width=32, depth=2, use_cross_attention=cross, n_heads=2)
    out = den(
        torch.randn(4, 6), torch.randint(0, 1000, (4,)), torch.randn(4, 16), torch.randn(4, 3, 16)
    )
    assert out.shape == (4, 6)


def test_nb_log_prob_matches_scipy():
    x = torch.tensor([0.0, 1.0, 5.0, 20.0])
    mu = torch.tensor([0.5, 2.0, 4.0, 30.0])
    theta = torch.tensor([1.0, 3.0, 0.5, 10.0])
    ref = stats.nbinom.logpmf(x.numpy(), n=theta.numpy(), p=(theta / (theta + mu)).numpy())
    np.testing.assert_allclose(nb_log_prob(x, mu, theta).numpy(), ref, rtol=1e-5)


def test_sample_nb_seeded_with_right_moments():
    mu = torch.full((20000,), 6.0)
    theta = torch.full((20000,), 2.0)
    a = sample_nb(mu, theta, torch.Generator().manual_seed(0))
    b = sample_nb(mu, theta, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and (a == a.round()).all() and (a >= 0).all()
    assert abs(a.mean().item() - 6.0) < 0.1
    assert abs(a.var().item() / (6.0 + 36.0 / 2.0) - 1) < 0.06  # NB variance mu + mu^2/theta
    small = sample_nb(
        torch.full((20000,), 3.0), torch.full((20000,), 0.3), torch.Generator().manual_seed(1)
    )
    assert abs(small.mean().item() - 3.0) < 0.15  # shape < 1 path


@pytest.mark.parametrize("likelihood", ["nb", "gaussian", "identity"])
def test_autoencoder_shapes_and_loss(likelihood):
    ae = ExpressionAutoencoder(10, 4 if likelihood != "identity" else 10, 16, 1, likelihood)
    counts = torch.poisson(torch.full((8, 10), 3.0))
    x_in = torch.log1p(counts)
    z = ae.encode(x_in)
    assert z.shape == (8, 4 if likelihood != "identity" else 10)
    out = ae.decode(z, counts.sum(-1))
    if likelihood == "nb":
        torch.testing.assert_close(out["mu"].sum(-1), counts.sum(-1))
    loss = ae.loss(x_in, counts if likelihood == "nb" else x_in, counts.sum(-1)).loss
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_guidance_one_is_conditional_and_zero_unconditional():
    diff = small_diffusion().eval()
    x, t = torch.randn(5, 3), torch.randint(0, 1000, (5,))
    pooled, tokens = diff.encode_condition(torch.randn(5, 4, 4))
    cond = diff.denoiser(x, t, pooled, tokens)
    null_p, null_t = diff.null_condition(5)
    uncond = diff.denoiser(x, t, null_p, null_t)
    torch.testing.assert_close(diff.predict(x, t, pooled, tokens, 1.0), cond, rtol=0, atol=0)
    torch.testing.assert_close(diff.predict(x, t, pooled, tokens, 0.0), uncond, rtol=0, atol=0)
    torch.testing.assert_close(
        diff.predict(x, t, pooled, tokens, 3.0), uncond + 3 * (cond - uncond)
    )


def test_diffusion_learns_a_conditional_toy_problem():
    """Latent = +-2 depending on the sign of the cells' first feature: the loss falls, and the
    sampled latents follow the condition."""
    torch.manual_seed(0)
    diff = small_diffusion(n_latent=1, n_features=2)
    opt = torch.optim.Adam(diff.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(300):
        sign = torch.randint(0, 2, (64,), generator=g).float() * 2 - 1
        cells = torch.randn(64, 4, 2, generator=g) * 0.1 + sign[:, None, None]
        x0 = 2 * sign[:, None] + 0.1 * torch.randn(64, 1, generator=g)
        loss = diff.loss(x0, cells, None, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-50:]) < 0.5 * np.mean(losses[:50])
    diff.eval()
    cells = torch.cat([torch.full((50, 4, 2), 1.0), torch.full((50, 4, 2), -1.0)])
    pooled, tokens = diff.encode_condition(cells)
    z = diff.sample(pooled, tokens, make_scheduler("dpmpp_2m"), 10, 1.0, g)
    assert z[:50].mean() > 1.0 and z[50:].mean() < -1.0


def test_ema_hand_computed():
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = EMA(lin, decay=0.5)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema.update(lin)  # warmup decay min(0.5, 1/10) = 0.1 -> 0.1*0 + 0.9*1
    assert ema.shadow["weight"].item() == pytest.approx(0.9)
    with torch.no_grad():
        lin.weight.fill_(2.0)
    ema.update(lin)  # min(0.5, 2/11) -> 2/11*0.9 + 9/11*2
    assert ema.shadow["weight"].item() == pytest.approx(2 / 11 * 0.9 + 9 / 11 * 2)
    restored = EMA(lin)
    restored.load_state_dict(ema.state_dict())
    restored.copy_to(lin)
    assert lin.weight.item() == pytest.approx(ema.shadow["weight"].item())
    assert restored.n_updates == 2
