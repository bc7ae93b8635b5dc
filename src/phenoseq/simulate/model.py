"""The hidden generative model: cell-state programs, treatment responses, batch effects, NB counts.

Notation (docs/simulator.md has the equations): a cell's state ``s`` (``n_programs``-d) is a basal
draw plus, for responders, a compound direction scaled by a Hill dose response. Expression is a
low-rank nonlinear map of ``s`` to gene logits, softmax, times a library size, with NB noise.
Morphology is a nonlinear map of ``s`` (some programs nearly invisible) to physical parameters
that :mod:`.render` draws. Replicate and well effects are added in both output spaces, scaled to
the median treatment effect measured in the same space; with several experiment rounds, round
effects (a drift of the state, technical offsets, camera settings) come on top.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

# physical morphology parameters and their ranges (lengths in pixels of a 64-pixel crop)
MORPHOLOGY_PARAMS: dict[str, tuple[float, float]] = {
    "nuc_radius": (5.5, 10.5),
    "nuc_aspect": (0.55, 1.0),
    "nuc_irregularity": (0.0, 0.12),
    "cell_scale": (1.5, 2.4),  # cell radius / nucleus radius
    "cell_aspect": (0.45, 1.0),
    "cell_irregularity": (0.0, 0.3),
    "nuc_offset": (0.0, 0.4),  # nucleus displacement, fraction of the free space
    "dna_intensity": (0.35, 1.0),
    "er_intensity": (0.15, 0.8),
    "rna_intensity": (0.15, 0.7),
    "agp_intensity": (0.15, 0.8),
    "mito_intensity": (0.15, 0.8),
    "dna_texture": (0.0, 0.6),
    "dna_grain": (0.8, 2.5),  # texture correlation length, pixels
    "nucleoli": (0.0, 1.0),
    "er_spread": (0.5, 3.0),  # decay of ER density away from the nucleus
    "er_texture": (0.1, 0.8),
    "mito_puncta": (0.2, 1.0),
    "mito_grain": (0.7, 2.0),
    "agp_fibers": (0.0, 1.0),  # actin fibres (1) versus a membrane ring (0)
}
N_CHANNELS = 5


@dataclass
class GroundTruthModel:
    """All parameters of the hidden model (arrays; ``T`` treatments with DMSO at 0, ``R``
    replicates, ``K`` experiment rounds, ``C`` compounds, ``G`` genes, ``P`` morphology
    parameters, ``d`` programs). The round arrays are empty with one round (no round effect)."""

    basal_chol: np.ndarray  # (d, d)
    cycle_shift: np.ndarray  # (d,)
    cycling_fraction: float
    directions: np.ndarray  # (C, d) unit vectors
    potency: np.ndarray  # (C,)
    ec50: np.ndarray  # (C,)
    hill: float
    responder_logit: np.ndarray  # (C,)
    responder_weights: np.ndarray  # (C, d)
    response_modulation: np.ndarray  # (C, d)
    amplitude_heterogeneity: float
    treatment_compound: np.ndarray  # (T,) int, -1 for DMSO
    treatment_dose: np.ndarray  # (T,)
    expr_in: np.ndarray  # (k, d)
    expr_bias: np.ndarray  # (k,)
    expr_loadings: np.ndarray  # (G, d + k)
    gene_base: np.ndarray  # (G,)
    theta: np.ndarray  # (G,)
    library_loading: np.ndarray  # (d,)
    log_median_umis: float
    library_sd: float
    visibility: np.ndarray  # (d,)
    morph_in: np.ndarray  # (m, d)
    morph_bias: np.ndarray  # (m,)
    morph_loadings: np.ndarray  # (P, d + m)
    morph_base: np.ndarray  # (P,)
    morphology_noise: float
    channel_gain: np.ndarray  # (R, 5)
    background: np.ndarray  # (R, 5)
    blur: np.ndarray  # (R,)
    library_batch: np.ndarray  # (R,)
    state_batch: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))  # (R, d)
    expr_batch: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))  # (R, G)
    expr_well: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 0)))
    morph_batch: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    morph_well: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 0)))
    median_effect: dict[str, float] = dataclasses.field(default_factory=dict)
    replicate_round: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    round_state: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))  # (K, d)
    round_expr: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))  # (K, G)
    round_morph: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))  # (K, P)
    round_library: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))  # (K,)
    round_gain: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))  # (K, 5)
    round_background: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    round_blur: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))  # (K,)

    def to_uns(self) -> dict[str, Any]:
        """A dict AnnData can store in ``uns``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_uns(cls, values: dict[str, Any]) -> GroundTruthModel:
        """Inverse of :meth:`to_uns` (fields a file predates keep their defaults)."""
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            v = values[f.name]
            kw[f.name] = {k: float(x) for k, x in v.items()} if isinstance(v, dict) else v
            if isinstance(kw[f.name], np.ndarray) and kw[f.name].ndim == 0:
                kw[f.name] = kw[f.name].item()
        return cls(**kw)

    @property
    def n_genes(self) -> int:
        return len(self.gene_base)

    def round_of(self, r: int) -> int | None:
        """Experiment round index of replicate ``r``; None when there are no round effects."""
        return int(self.replicate_round[r]) if self.round_state.size else None

    def camera(self, r: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Channel gain ``(5,)``, background ``(5,)`` and blur of replicate ``r`` (its round's
        camera settings included)."""
        k = self.round_of(r)
        if k is None:
            return self.channel_gain[r], self.background[r], self.blur[r]
        return (
            self.channel_gain[r] * self.round_gain[k],
            self.background[r] + self.round_background[k],
            self.blur[r] + self.round_blur[k],
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# the cell-level generative process
# ---------------------------------------------------------------------------------------------


def dose_response(model: GroundTruthModel, t: int) -> float:
    """Hill response in [0, 1) of treatment ``t`` (0 for DMSO)."""
    c = model.treatment_compound[t]
    if c < 0:
        return 0.0
    x, h = model.treatment_dose[t], model.hill
    return float(x**h / (x**h + model.ec50[c] ** h))


def sample_state(
    model: GroundTruthModel, t: int, r: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states of ``n`` cells under treatment ``t`` in replicate ``r``.

    Returns
    -------
    state
        ``(n, d)`` program activities.
    responder
        ``(n,)`` bool, whether the cell responded (always False for DMSO).
    """
    d = model.basal_chol.shape[0]
    s0 = rng.standard_normal((n, d)) @ model.basal_chol.T
    s0 += (rng.random(n) < model.cycling_fraction)[:, None] * model.cycle_shift
    if model.state_batch.size:
        s0 += model.state_batch[r]  # the culture of this replicate (passage, density, media)
    k = model.round_of(r)
    if k is not None:
        s0 += model.round_state[k]  # the drift of the cells between experiment rounds
    c = model.treatment_compound[t]
    if c < 0:
        return s0, np.zeros(n, dtype=bool)
    p = _sigmoid(model.responder_logit[c] + s0 @ model.responder_weights[c])
    responder = rng.random(n) < p
    hetero = 1 + model.amplitude_heterogeneity * np.tanh(s0 @ model.response_modulation[c])
    amp = model.potency[c] * dose_response(model, t) * hetero
    return s0 + (responder * amp)[:, None] * model.directions[c], responder


def _features(state: np.ndarray, w_in: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[s, tanh(W s + b)]``: the low-rank nonlinear basis shared by both modalities' maps."""
    return np.concatenate([state, np.tanh(state @ w_in.T + bias)], axis=1)


def expression_logits(model: GroundTruthModel, state: np.ndarray, t: int, r: int) -> np.ndarray:
    """Gene logits ``(n, G)`` of cells with hidden ``state`` in treatment ``t``, replicate ``r``."""
    eta = model.gene_base + _features(state, model.expr_in, model.expr_bias) @ model.expr_loadings.T
    if model.expr_batch.size:
        eta = eta + model.expr_batch[r] + model.expr_well[t, r]
    k = model.round_of(r)
    if k is not None:
        eta = eta + model.round_expr[k]
    return eta


def expression_mean(
    model: GroundTruthModel, state: np.ndarray, t: int, r: int, rng: np.random.Generator
) -> np.ndarray:
    """NB means ``(n, G)``: softmax of the logits times a log-normal library size."""
    eta = expression_logits(model, state, t, r)
    eta -= eta.max(axis=1, keepdims=True)
    prob = np.exp(eta)
    prob /= prob.sum(axis=1, keepdims=True)
    log_lib = model.log_median_umis + model.library_batch[r] + state @ model.library_loading
    k = model.round_of(r)
    if k is not None:
        log_lib = log_lib + model.round_library[k]
    log_lib = log_lib + model.library_sd * rng.standard_normal(len(state))
    return prob * np.exp(log_lib)[:, None]


def sample_counts(
    model: GroundTruthModel, state: np.ndarray, t: int, r: int, rng: np.random.Generator
) -> sp.csr_matrix:
    """Negative-binomial UMI counts ``(n, G)`` (CSR float32, integer-valued), gamma-Poisson.

    Like cell calling, a sequenced cell has at least one UMI: the rare cell drawn with none
    (a very small library) is redrawn up to 10 times, then given one UMI of its most expected
    gene. Seeds without such cells consume the random stream exactly as before.
    """
    mu = expression_mean(model, state, t, r, rng)
    theta = np.broadcast_to(model.theta.astype(np.float32), mu.shape)
    lam = rng.standard_gamma(theta, dtype=np.float32) * (mu / model.theta)
    counts = rng.poisson(lam).astype(np.float32)
    for _ in range(10):
        empty = np.flatnonzero(counts.sum(axis=1) == 0)
        if not len(empty):
            break
        counts[empty] = rng.poisson(lam[empty]).astype(np.float32)
    empty = np.flatnonzero(counts.sum(axis=1) == 0)
    counts[empty, np.argmax(mu[empty], axis=1)] = 1.0
    return sp.csr_matrix(counts)


def morphology_raw(model: GroundTruthModel, state: np.ndarray, t: int, r: int) -> np.ndarray:
    """Noise-free unbounded morphology parameters ``(n, P)`` (before the per-cell nuisance)."""
    h = _features(state * model.visibility, model.morph_in, model.morph_bias)
    raw = model.morph_base + h @ model.morph_loadings.T
    if model.morph_batch.size:
        raw = raw + model.morph_batch[r] + model.morph_well[t, r]
    k = model.round_of(r)
    if k is not None:
        raw = raw + model.round_morph[k]
    return raw


def morphology_params(
    model: GroundTruthModel, state: np.ndarray, t: int, r: int, rng: np.random.Generator
) -> np.ndarray:
    """Physical morphology parameters ``(n, P)`` in the ranges of :data:`MORPHOLOGY_PARAMS`."""
    raw = morphology_raw(model, state, t, r)
    raw = raw + model.morphology_noise * rng.standard_normal(raw.shape)
    lo, hi = np.array(list(MORPHOLOGY_PARAMS.values())).T
    return lo + (hi - lo) * _sigmoid(raw)
