"""NB / Gaussian log-likelihoods against scipy, and seeded Gamma / NB sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from phenoseq.nn import gaussian_log_prob, nb_log_prob, sample_gamma, sample_nb


def test_nb_log_prob_matches_scipy():
    x, mu, theta = np.meshgrid([0, 1, 3, 17, 250], [0.01, 0.5, 4.0, 80.0], [0.05, 1.0, 12.0, 1e3])
    ref = stats.nbinom.logpmf(x, n=theta, p=theta / (theta + mu))
    got = nb_log_prob(*(torch.from_numpy(a.astype(np.float64)) for a in (x, mu, theta)))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6, atol=1e-6)


def test_nb_log_prob_broadcasts_per_gene_theta():
    x, mu = torch.tensor([[0.0, 2.0], [5.0, 1.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    theta = torch.tensor([0.5, 4.0])
    assert nb_log_prob(x, mu, theta).shape == (2, 2)
    torch.testing.assert_close(
        nb_log_prob(x, mu, theta)[:, 1], nb_log_prob(x[:, 1], mu[:, 1], 4.0 + 0 * mu[:, 1])
    )


def test_gaussian_log_prob_matches_scipy():
    x, mean, log_var = (
        np.array([-1.0, 0.3, 4.0]),
        np.array([0.0, 0.5, 1.0]),
        np.array([0.0, -2.0, 1.5]),
    )
    ref = stats.norm.logpdf(x, mean, np.exp(0.5 * log_var))
    got = gaussian_log_prob(*(torch.from_numpy(a) for a in (x, mean, log_var)))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("shape", [0.3, 1.0, 2.5, 20.0])
def test_sample_gamma_moments_and_seed(shape):
    a = torch.full((20000,), shape)
    x = sample_gamma(a, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float64 and (x > 0).all()
    torch.testing.assert_close(x, sample_gamma(a, torch.Generator().manual_seed(0)), rtol=0, atol=0)
    se = (shape / 20000) ** 0.5
    assert abs(x.mean().item() - shape) < 4 * se  # Gamma(a, 1): mean a, variance a
    assert abs(x.var().item() / shape - 1) < 0.06


def test_sample_nb_seeded_with_right_moments():
    mu, theta = torch.full((20000,), 6.0), torch.full((20000,), 2.0)
    a = sample_nb(mu, theta, torch.Generator().manual_seed(0))
    b = sample_nb(mu, theta, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, sample_nb(mu, theta, torch.Generator().manual_seed(1)))
    assert a.dtype == mu.dtype and (a == a.round()).all() and (a >= 0).all()
    assert abs(a.mean().item() - 6.0) < 0.1
    assert abs(a.var().item() / (6.0 + 36.0 / 2.0) - 1) < 0.06  # mu + mu^2 / theta


def test_sample_nb_matrix_with_per_gene_theta():
    mu = torch.tensor([[0.0, 0.5, 40.0]]).expand(4000, 3)
    theta = torch.tensor([1.0, 0.2, 50.0])
    x = sample_nb(mu, theta, torch.Generator().manual_seed(2))
    assert x.shape == (4000, 3) and (x[:, 0] == 0).all()
    torch.testing.assert_close(x.mean(0)[1:], mu[0, 1:], rtol=0.1, atol=0.0)
    torch.testing.assert_close(x.var(0)[2], torch.tensor(40.0 + 1600 / 50), rtol=0.1, atol=0.0)
