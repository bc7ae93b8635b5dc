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


def assert_moments(x: torch.Tensor, mean: float, var: float, kurtosis: float, z: float = 4.0):
    """The sample mean and variance of iid draws ``x`` are within ``z`` standard errors of the
    exact ``mean`` and ``var``; the SEs come from the exact moments: ``var / n`` for the mean,
    ``mu4 / n - var^2 (n - 3) / (n (n - 1))`` for the variance (``mu4 = (kurtosis + 3) var^2``,
    ``kurtosis`` the excess kurtosis). z = 4: the suite's 14 such checks then fail by chance
    with probability about 1e-3 (they passed on each of 60 seeds)."""
    x = x.double().ravel()
    n = x.numel()
    mu4 = (kurtosis + 3) * var**2
    se_mean = (var / n) ** 0.5
    se_var = (mu4 / n - var**2 * (n - 3) / (n * (n - 1))) ** 0.5
    assert abs(x.mean().item() - mean) < z * se_mean, ("mean", x.mean().item(), mean, se_mean)
    assert abs(x.var().item() - var) < z * se_var, ("var", x.var().item(), var, se_var)


def nb_moments(mu: float, theta: float) -> tuple[float, float, float]:
    """Exact mean, variance and excess kurtosis of NB(mu, theta) (scipy's parametrisation)."""
    m, v, k = stats.nbinom.stats(n=theta, p=theta / (theta + mu), moments="mvk")
    return float(m), float(v), float(k)


@pytest.mark.parametrize("shape", [0.3, 1.0, 2.5, 20.0])
def test_sample_gamma_moments_and_seed(shape):
    a = torch.full((20000,), shape)
    x = sample_gamma(a, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float64 and (x > 0).all()
    torch.testing.assert_close(x, sample_gamma(a, torch.Generator().manual_seed(0)), rtol=0, atol=0)
    assert not torch.equal(x, sample_gamma(a, torch.Generator().manual_seed(1)))
    assert_moments(x, shape, shape, 6 / shape)  # Gamma(a, 1): mean a, variance a, kurtosis 6/a
    # the whole distribution (a sampler that skips Marsaglia-Tsang's rejection keeps the first
    # two moments close at most shapes): a chance failure has probability 1e-3
    assert stats.kstest(x.numpy(), "gamma", args=(shape,)).pvalue > 1e-3


def test_sample_nb_seeded_with_right_moments():
    mu, theta = torch.full((20000,), 6.0), torch.full((20000,), 2.0)
    a = sample_nb(mu, theta, torch.Generator().manual_seed(0))
    b = sample_nb(mu, theta, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, sample_nb(mu, theta, torch.Generator().manual_seed(1)))
    assert a.dtype == mu.dtype and (a == a.round()).all() and (a >= 0).all()
    assert_moments(a, *nb_moments(6.0, 2.0))  # mean mu, variance mu + mu^2 / theta = 24


def test_sample_nb_matrix_with_per_gene_theta():
    mu = torch.tensor([[0.0, 0.5, 40.0]]).expand(4000, 3)
    theta = torch.tensor([1.0, 0.2, 50.0])
    x = sample_nb(mu, theta, torch.Generator().manual_seed(2))
    assert x.shape == (4000, 3) and (x[:, 0] == 0).all()
    for j in (1, 2):  # each column follows its own gene's theta
        assert_moments(x[:, j], *nb_moments(float(mu[0, j]), float(theta[j])))
