"""Observation likelihoods of the expression decoder and seeded sampling from them.

Negative binomial with mean ``mu`` and inverse dispersion ``theta`` (scvi-tools'
parameterisation; variance ``mu + mu^2 / theta``) for counts, diagonal Gaussian for continuous
profiles.

Seeded sampling: ``torch.distributions.Gamma`` (``torch._standard_gamma``) takes no
``generator``, so the same seed would not give the same counts. :func:`sample_gamma` is a
Marsaglia-Tsang rejection sampler written with ``torch.randn`` / ``torch.rand`` draws from
the given generator (float64), and :func:`sample_nb` mixes it with ``torch.poisson``, which
does take a generator: same generator state, same counts, on CPU and (with a CUDA generator)
on GPU, without a round trip through numpy.
"""

from __future__ import annotations

import math

import torch


def nb_log_prob(
    x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Log-pmf of counts ``x`` under NB(mean ``mu``, inverse dispersion ``theta``).

    Equals ``scipy.stats.nbinom.logpmf(x, n=theta, p=theta / (theta + mu))``.

    Parameters
    ----------
    x, mu, theta
        Broadcastable, e.g. ``"batch n_genes"`` with ``theta`` ``"n_genes"``; ``mu >= 0``,
        ``theta > 0``.

    Returns
    -------
    Elementwise log-probabilities (nats), the broadcast shape.
    """
    log_theta_mu = torch.log(theta + mu + eps)
    return (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
        + theta * (torch.log(theta + eps) - log_theta_mu)
        + x * (torch.log(mu + eps) - log_theta_mu)
    )


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Elementwise log-density of ``x`` under N(``mean``, ``exp(log_var)``), broadcast shape."""
    return -0.5 * ((x - mean) ** 2 * torch.exp(-log_var) + log_var + math.log(2 * math.pi))


def _marsaglia_tsang(a: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gamma(``a``, 1) draws for ``a >= 1`` (float64), by rejection; ~2-5% of draws repeat."""
    d = a.reshape(-1) - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(d)
    todo = torch.arange(d.numel(), device=a.device)
    while todo.numel():
        z = torch.randn(todo.shape, generator=generator, dtype=a.dtype, device=a.device)
        u = torch.rand(todo.shape, generator=generator, dtype=a.dtype, device=a.device)
        v = (1 + c[todo] * z) ** 3
        log_v = torch.log(v.clamp(min=1e-300))
        ok = (v > 0) & (torch.log(u) < 0.5 * z**2 + d[todo] * (1 - v + log_v))
        out[todo[ok]] = (d[todo] * v)[ok]
        todo = todo[~ok]
    return out.reshape(a.shape)


def sample_gamma(concentration: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gamma(``concentration``, rate 1) draws, all randomness from ``generator``.

    Marsaglia & Tsang (2000); shapes below 1 use ``Gamma(a) = Gamma(a + 1) * U ** (1 / a)``.

    Parameters
    ----------
    concentration
        Shape parameters ``> 0``, any shape.
    generator
        On the same device as ``concentration``.

    Returns
    -------
    float64 draws, the shape of ``concentration``.
    """
    a = concentration.double()
    boost = a < 1
    g = _marsaglia_tsang(torch.where(boost, a + 1, a), generator)
    u = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=a.device)
    return torch.where(boost, g * u ** (1.0 / a.clamp(min=1e-12)), g)


def sample_nb(
    mu: torch.Tensor, theta: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """NB(``mu``, ``theta``) counts as a Gamma-Poisson mixture, seeded by ``generator``.

    ``rate ~ Gamma(theta, rate=theta / mu)``, ``counts ~ Poisson(rate)``.

    Parameters
    ----------
    mu
        Means ``"*shape"`` (``>= 0``), e.g. ``"batch n_genes"``.
    theta
        Inverse dispersions broadcastable to ``mu`` (e.g. ``"n_genes"``).
    generator
        On ``mu``'s device; the same state gives the same counts.

    Returns
    -------
    Integer-valued counts in ``mu``'s dtype, shape of ``mu``.
    """
    theta = theta.expand_as(mu).double()
    rate = sample_gamma(theta, generator) * (mu.double() / theta)
    return torch.poisson(rate, generator=generator).to(mu.dtype)
