"""Schedule invariants and prediction conversions (pure float64 math)."""

from __future__ import annotations

import pytest
import torch

from phenoseq.nn import (
    add_noise,
    alphas_cumprod,
    cosine_betas,
    predict_epsilon,
    predict_x0,
    training_target,
    v_target,
)

PTYPES = ["epsilon", "v_prediction", "sample"]


@pytest.mark.parametrize("n", [10, 1000])
def test_cosine_schedule_invariants(n):
    betas = cosine_betas(n)
    ab = alphas_cumprod(betas)
    assert betas.dtype == ab.dtype == torch.float64 and ab.shape == (n,)
    assert (betas > 0).all() and (betas <= 0.999).all()
    assert (ab > 0).all() and (ab < 1).all() and (ab.diff() < 0).all()
    torch.testing.assert_close(ab, torch.cumprod(1 - betas, 0))
    if n == 1000:
        assert ab[0] > 0.9999 and ab[-1] < 1e-6


def test_cosine_matches_closed_form_alpha_bar():
    """Away from the max_beta clip, alpha_bar_t = f(t+1) / f(0) with f the squared cosine."""
    ab = alphas_cumprod(cosine_betas(1000))

    def f(u):
        return torch.cos(torch.tensor((u + 0.008) / 1.008 * torch.pi / 2, dtype=torch.float64)) ** 2

    for t in (0, 100, 500, 900):
        torch.testing.assert_close(ab[t], f((t + 1) / 1000) / f(0.0))


@pytest.mark.parametrize("ptype", PTYPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_prediction_conversions_roundtrip(ptype, dtype):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(5, 3, generator=g, dtype=dtype)
    noise = torch.randn(5, 3, generator=g, dtype=dtype)
    ab = torch.tensor([0.05, 0.3, 0.5, 0.9, 0.99], dtype=torch.float64)  # one level per row
    x_t = add_noise(x0, noise, ab)
    out = training_target(x0, noise, ab, ptype)
    assert out.dtype == dtype
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(predict_x0(x_t, out, ab, ptype), x0, **tol)
    torch.testing.assert_close(predict_epsilon(x_t, out, ab, ptype), noise, **tol)


def test_v_target_definition_and_scalar_alpha_bar():
    x0, noise = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    ab = 0.36
    v = v_target(x0, noise, ab)
    torch.testing.assert_close(v, 0.6 * noise - 0.8 * x0)
    x_t = add_noise(x0, noise, ab)
    torch.testing.assert_close(x_t, 0.6 * x0 + 0.8 * noise)
    torch.testing.assert_close(0.6 * x_t - 0.8 * v, x0)  # x0 = a x_t - b v


def test_conversions_broadcast_over_extra_dims():
    x0, noise = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    ab = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    out = training_target(x0, noise, ab, "v_prediction")
    x_t = add_noise(x0, noise, ab)
    torch.testing.assert_close(predict_x0(x_t, out, ab, "v_prediction"), x0)


def test_unknown_prediction_type():
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="unknown prediction_type"):
        predict_x0(x, x, 0.5, "flow")
