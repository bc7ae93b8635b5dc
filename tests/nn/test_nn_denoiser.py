"""Denoiser: shapes, adaLN-Zero initialisation, use of the condition and the tokens."""

from __future__ import annotations

import pytest
import torch
from nn_helpers import perturbed

from phenoseq.nn import Denoiser, timestep_embedding


def inputs(batch=4, n_latent=6, d_cond=16, n_tokens=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, n_latent, generator=g),
        torch.randint(0, 1000, (batch,), generator=g),
        torch.randn(batch, d_cond, generator=g),
        torch.randn(batch, n_tokens, d_cond, generator=g),
    )


@pytest.mark.parametrize("cross", [False, True])
def test_shapes_and_zero_init(cross):
    den = Denoiser(6, 16, width=32, depth=2, use_cross_attention=cross, n_heads=2)
    out = den(*inputs())
    assert out.shape == (4, 6)
    assert torch.equal(out, torch.zeros(4, 6))  # adaLN-Zero: the output starts at zero


def test_scalar_timestep_broadcasts():
    den = perturbed(Denoiser(6, 16, width=32, depth=2)).eval()
    x, _, cond, _ = inputs()
    t = torch.full((4,), 17)
    torch.testing.assert_close(den(x, torch.tensor(17), cond), den(x, t, cond))


def test_output_depends_on_timestep_condition_and_tokens():
    den = perturbed(Denoiser(6, 16, width=32, depth=2, use_cross_attention=True, n_heads=2))
    x, t, cond, tokens = inputs()
    base = den(x, t, cond, tokens)
    assert not torch.allclose(base, den(x, t + 100, cond, tokens))
    assert not torch.allclose(base, den(x, t, cond + 1, tokens))
    assert not torch.allclose(base, den(x, t, cond, tokens + 1))
    assert den(x, t, cond, None).shape == (4, 6)  # tokens optional


def test_without_cross_attention_tokens_are_ignored():
    den = perturbed(Denoiser(6, 16, width=32, depth=2))
    x, t, cond, tokens = inputs()
    torch.testing.assert_close(den(x, t, cond, tokens), den(x, t, cond, None), rtol=0, atol=0)


def test_gradients_reach_the_block_mlps_by_the_third_step():
    """adaLN-Zero: step 1 moves the output layer, step 2 the gates, step 3 reaches the MLPs."""
    torch.manual_seed(0)
    den = Denoiser(6, 16, width=32, depth=2)
    opt = torch.optim.SGD(den.parameters(), lr=0.1)
    x, t, cond, _ = inputs()
    for _ in range(3):
        opt.zero_grad()
        (den(x, t, cond) - 1).pow(2).mean().backward()
        opt.step()
    grads = [p.grad for p in den.blocks[0].mlp.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_timestep_embedding():
    emb = timestep_embedding(torch.tensor([0, 10, 999]), 9)
    assert emb.shape == (3, 9)
    torch.testing.assert_close(emb[0, :4], torch.ones(4))  # cos(0)
    torch.testing.assert_close(emb[0, 4:], torch.zeros(5))  # sin(0) and the odd padding
