"""The closed-form mean head on synthetic wells with a known answer: it recognises a treatment
within the replicate spread, interpolates a new one with kernel ridge, widens its spread where it
must interpolate, and saves / loads exactly."""

from __future__ import annotations

import numpy as np
import pytest

from phenoseq.config import MeanHeadConfig
from phenoseq.model._mean_head import KernelRidge, MeanHead, Wells, fit_space, pair_deviations


def _wells(rng, n_treat=8, reps=2, f=6, k=3, spread=0.05):
    """Treatments on a smooth curve in morphology; latent means a smooth function of it."""
    centres = np.c_[np.linspace(-2, 2, n_treat), np.sin(np.linspace(-2, 2, n_treat)),
                    np.zeros((n_treat, f - 2))]  # fmt: skip
    m = np.repeat(centres, reps, axis=0) + rng.normal(0, spread, (n_treat * reps, f))
    y = np.c_[m[:, :1] * 2, np.cos(m[:, :1]), m[:, 1:2]][:, :k]
    labels = np.repeat([f"T{i}" for i in range(n_treat)], reps)
    cov = np.eye(f) * spread**2 * 30  # cells per well: 30 -> the mean's noise is spread^2
    return Wells(m, y, labels, labels, np.full(len(m), 30), cov), centres


def test_recognises_seen_treatments_and_interpolates_new_ones():
    rng = np.random.default_rng(0)
    wells, centres = _wells(rng)
    head = MeanHead.fit(wells, MeanHeadConfig(temperature=1.0, p_new=0.05), np.arange(16))
    # a new well of treatment T3: recognised, its mean is T3's training mean, little spread
    z = head.represent(centres[3:4] + rng.normal(0, 0.05, (1, 6)))
    w = head.weights(z)[0]
    assert w.argmax() == 3 and w[3] > 0.95
    mean, var = head.predict_spread(z, wells.y)
    np.testing.assert_allclose(mean[0], wells.y[wells.labels == "T3"].mean(0), atol=0.05)
    # a well half way between T3 and T4 (a new dose): no single treatment, kernel ridge's share
    # interpolates and the spread is larger than for a recognised well
    half = (centres[3] + centres[4]) / 2
    m_mid, v_mid = head.predict_spread(head.represent(half[None]), wells.y)
    truth = np.r_[half[0] * 2, np.cos(half[0]), half[1]]
    assert np.abs(m_mid[0] - truth).max() < 0.5
    assert v_mid.sum() > 10 * var.sum()


def test_kernel_ridge_variance_and_linearity():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(20, 3))
    Y = Z @ rng.normal(size=(3, 2))
    krr = KernelRidge(0.5, 1e-6).fit(Z, Y)
    assert krr.variance(Z).max() < 1e-3  # no uncertainty at a training well
    assert krr.variance(Z * 10).min() > krr.variance(Z).max()
    np.testing.assert_allclose(krr.predict(Z)[0], Y, atol=1e-3)
    # predictions are linear in the targets: the weights reproduce any target
    W = krr.weights(Z[:5] + 0.1)
    np.testing.assert_allclose(krr.ybar + W @ (Y - krr.ybar), krr.predict(Z[:5] + 0.1)[0])


def test_whitening_learns_the_replicate_spread_only_from_pairs():
    rng = np.random.default_rng(2)
    wells, _ = _wells(rng, spread=0.2)
    W, tau2 = fit_space(wells)
    dev = pair_deviations(wells.m @ W, wells.labels)
    # in the whitened space a well's deviation from its treatment has about unit variance
    assert 0.5 < (dev**2).mean() < 2.0 and tau2 >= 0
    single = Wells(wells.m[::2], wells.y[::2], wells.labels[::2], wells.labels[::2],
                   wells.n_cells[::2], np.zeros((6, 6)))  # fmt: skip
    W1, tau1 = fit_space(single)  # one well per treatment and no cell spread: as is
    np.testing.assert_array_equal(W1, np.eye(6))
    head = MeanHead.fit(single, MeanHeadConfig(), np.arange(8))
    assert head.posterior is None and (head.weights(single.m[:2])[:, -1] == 1).all()


@pytest.mark.parametrize("kind", ["mixture", "mean", "krr"])
def test_state_round_trip(kind):
    rng = np.random.default_rng(3)
    wells, centres = _wells(rng)
    head = MeanHead.fit(wells, MeanHeadConfig(kind=kind), np.arange(16))
    again = MeanHead.from_state(*head.state())
    z = head.represent(centres + 0.3)
    for a, b in zip(head.components(z), again.components(z), strict=True):
        np.testing.assert_allclose(a, b)
    w, means, _ = head.components(z)
    np.testing.assert_allclose(w.sum(1), 1.0)
    if kind != "mixture":
        assert (w[:, -1] == 1).all()  # one component
