"""Expression autoencoder: shapes, latent scale, likelihood heads, loss values, learning."""

from __future__ import annotations

import pytest
import torch
from nn_helpers import one_thread  # noqa: F401  (fixture)

from phenoseq.nn import ExpressionAutoencoder, gaussian_log_prob, nb_log_prob


def counts(n_cells=8, n_genes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    rates = torch.rand(n_cells, n_genes, generator=g) * 6
    return torch.poisson(rates, generator=g)


def log1p_norm(x):
    return torch.log1p(x / x.sum(-1, keepdim=True).clamp(min=1) * 1e4)


@pytest.mark.parametrize("likelihood", ["nb", "gaussian"])
def test_shapes_and_unit_scale_latent(likelihood):
    torch.manual_seed(0)
    ae = ExpressionAutoencoder(10, n_latent=6, n_hidden=16, n_layers=1, likelihood=likelihood)
    x = counts()
    z = ae.encode(log1p_norm(x))
    assert z.shape == (8, 6) and ae.n_latent == 6
    torch.testing.assert_close(z.mean(-1), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(-1, unbiased=False), torch.ones(8), atol=1e-3, rtol=0)
    out = ae.decode(z, x.sum(-1))
    assert all(v.shape == (8, 10) for v in out.values())


def test_nb_head():
    torch.manual_seed(0)
    ae = ExpressionAutoencoder(10, 4, 16, 1, "nb")
    x = counts()
    z = ae.encode(log1p_norm(x))
    out = ae.decode(z, x.sum(-1))
    torch.testing.assert_close(out["scale"].sum(-1), torch.ones(8))
    torch.testing.assert_close(out["mu"].sum(-1), x.sum(-1))
    assert (out["theta"] > 0).all()
    assert set(ae.decode(z)) == {"scale", "theta"}  # no library, no mu


def test_latent_norm_off():
    ae = ExpressionAutoencoder(10, 4, 16, 1, "nb", use_latent_norm=False)
    z = ae.encode(log1p_norm(counts()))
    assert z.mean(-1).abs().max() > 1e-3


@pytest.mark.parametrize("likelihood", ["nb", "gaussian"])
def test_loss_is_the_negative_log_likelihood(likelihood):
    torch.manual_seed(0)
    ae = ExpressionAutoencoder(10, 4, 16, 1, likelihood).eval()
    x = counts()
    x_in = log1p_norm(x)
    target = x if likelihood == "nb" else x_in
    res = ae.loss(x_in, target, x.sum(-1))
    out = ae(x_in, x.sum(-1))
    if likelihood == "nb":
        nll = -nb_log_prob(x, out["mu"], out["theta"]).sum(-1)
        torch.testing.assert_close(ae.loss(x_in, x).loss, res.loss)  # default library
    else:
        nll = -gaussian_log_prob(target, out["mean"], out["log_var"]).sum(-1)
    torch.testing.assert_close(res.reconstruction, nll)
    torch.testing.assert_close(res.loss, nll.mean() / 10)
    res.loss.backward()
    assert all(p.grad is not None for p in ae.parameters())


def test_identity_passes_through():
    ae = ExpressionAutoencoder(12, n_latent=64, likelihood="identity")
    x = torch.randn(5, 12)
    assert ae.n_latent == 12 and len(list(ae.parameters())) == 0
    torch.testing.assert_close(ae.encode(x), x, rtol=0, atol=0)
    torch.testing.assert_close(ae.decode(x)["mean"], x, rtol=0, atol=0)
    res = ae.loss(x, x)
    assert res.loss.item() == 0.0 and res.reconstruction.shape == (5,)


def test_unknown_likelihood():
    with pytest.raises(ValueError, match="unknown likelihood"):
        ExpressionAutoencoder(5, likelihood="poisson")


@pytest.mark.usefixtures("one_thread")
def test_nb_autoencoder_learns():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    programs = torch.softmax(3 * torch.randn(3, 20, generator=g), -1)
    which = torch.randint(0, 3, (256,), generator=g)
    x = torch.poisson(programs[which] * 200, generator=g)
    ae = ExpressionAutoencoder(20, 4, 32, 1, "nb", dropout=0.0)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = ae.loss(log1p_norm(x), x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
