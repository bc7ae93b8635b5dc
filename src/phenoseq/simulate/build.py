"""Draw the hidden model's parameters and size the batch effects from the treatment effects."""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import SimulatorConfig
from .model import (
    MORPHOLOGY_PARAMS,
    N_CHANNELS,
    GroundTruthModel,
    expression_logits,
    morphology_raw,
    sample_state,
)

_N_CALIBRATION = 256


def _sparse_normal(shape: tuple[int, ...], sd: float, density: float, rng: np.random.Generator):
    return rng.normal(0.0, sd, shape) * (rng.random(shape) < density)


def _unit_inputs(k: int, d: int, sd: float, rng: np.random.Generator) -> np.ndarray:
    """``(k, d)`` input weights of nonlinear units, each reading one or two programs."""
    w = np.zeros((k, d))
    for i in range(k):
        idx = rng.choice(d, 1 + int(rng.random() < 0.5), replace=False)
        w[i, idx] = rng.normal(0.0, sd, len(idx))
    return w


def _state_params(c: SimulatorConfig, rng: np.random.Generator) -> dict[str, Any]:
    d = c.n_programs
    b = rng.normal(0.0, 1.0, (d, d)) / np.sqrt(d)
    cov = np.eye(d) + c.program_correlation * d * (b @ b.T) / np.trace(b @ b.T)
    cov /= np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    shift = np.zeros(d)
    shift[0] = 2.0
    return dict(
        basal_chol=np.linalg.cholesky(cov), cycle_shift=shift, cycling_fraction=c.cycling_fraction
    )


def _compound_params(c: SimulatorConfig, rng: np.random.Generator) -> dict[str, Any]:
    n, d = c.n_compounds, c.n_programs
    directions = np.zeros((n, d))
    for i in range(n):
        idx = rng.choice(d, c.programs_per_compound, replace=False)
        directions[i, idx] = rng.normal(0.0, 1.0, len(idx))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    lo, hi = np.log(c.ec50_range)
    r_lo, r_hi = c.responder_range
    p = rng.uniform(r_lo, r_hi, n)
    return dict(
        directions=directions,
        potency=c.effect_size * np.exp(rng.normal(0.0, c.potency_sd, n)),
        ec50=np.exp(rng.uniform(lo, hi, n)),
        hill=c.hill,
        responder_logit=np.log(p / (1 - p)),
        responder_weights=rng.normal(0.0, c.responder_dependence, (n, d)),
        response_modulation=rng.normal(0.0, 0.4, (n, d)),
        amplitude_heterogeneity=c.amplitude_heterogeneity,
    )


def _treatment_params(treatments: Any) -> dict[str, Any]:
    return dict(
        treatment_compound=treatments["compound_index"].to_numpy(np.int64),
        treatment_dose=treatments["dose"].to_numpy(np.float64),
    )


def _expression_params(c: SimulatorConfig, rng: np.random.Generator) -> dict[str, Any]:
    d, k, g = c.n_programs, c.n_expression_units, c.n_genes
    return dict(
        expr_in=_unit_inputs(k, d, c.unit_input_sd, rng),
        expr_bias=rng.normal(0.0, 0.5, k),
        expr_loadings=_sparse_normal((g, d + k), c.loading_sd, c.loading_density, rng),
        gene_base=rng.normal(0.0, c.gene_sd, g),
        theta=c.inverse_dispersion * np.exp(rng.normal(0.0, 0.5, g)),
        library_loading=rng.normal(0.0, 0.1, d),
        log_median_umis=float(np.log(c.median_umis)),
        library_sd=c.library_sd,
    )


def _morphology_params(c: SimulatorConfig, rng: np.random.Generator) -> dict[str, Any]:
    d, m, p = c.n_programs, c.n_morphology_units, len(MORPHOLOGY_PARAMS)
    visibility = np.ones(d)
    visibility[d - c.n_hidden_programs :] = c.hidden_visibility
    return dict(
        visibility=visibility,
        morph_in=_unit_inputs(m, d, c.unit_input_sd, rng),
        morph_bias=rng.normal(0.0, 0.5, m),
        morph_loadings=_sparse_normal(
            (p, d + m), c.morphology_loading_sd, c.morphology_loading_density, rng
        ),
        morph_base=rng.normal(0.0, 0.2, p),
        morphology_noise=c.morphology_noise,
    )


def _acquisition_params(c: SimulatorConfig, rng: np.random.Generator) -> dict[str, Any]:
    r = c.n_replicates
    return dict(
        channel_gain=np.exp(c.acquisition_batch * rng.normal(0.0, 0.1, (r, N_CHANNELS))),
        background=0.04 + c.acquisition_batch * rng.uniform(-0.02, 0.02, (r, N_CHANNELS)),
        blur=0.75 + c.acquisition_batch * rng.uniform(-0.25, 0.25, r),
        library_batch=rng.normal(0.0, 0.15, r),
    )


def build_model(
    config: SimulatorConfig, treatments: Any, rng: np.random.Generator
) -> GroundTruthModel:
    """Draw every model parameter, then scale batch and well effects to the treatment effects.

    Parameters
    ----------
    config
        The simulator configuration.
    treatments
        The design's treatment table (``compound_index``, ``dose``), DMSO first.
    rng
        Source of all randomness of the model's parameters.
    """
    parts: dict[str, Any] = {}
    for make in (
        _state_params,
        _compound_params,
        _expression_params,
        _morphology_params,
        _acquisition_params,
    ):
        parts.update(make(config, rng))
    model = GroundTruthModel(**parts, **_treatment_params(treatments))
    add_batch_effects(model, config, rng)
    return model


# ---------------------------------------------------------------------------------------------
# batch effects, scaled to the treatment effects
# ---------------------------------------------------------------------------------------------


def _centered_logits(model: GroundTruthModel, state: np.ndarray, t: int) -> np.ndarray:
    eta = expression_logits(model, state, t, 0)
    return eta - eta.mean(axis=1, keepdims=True)  # softmax ignores a constant shift


def median_treatment_effect(model: GroundTruthModel, space: str, seed: int = 0) -> float:
    """Median over treatments of the norm of the mean shift from DMSO, in ``space``
    (``"state"``; ``"expression"``: centred gene logits; ``"morphology"``: raw morphology
    parameters), within replicate 1.

    Common random numbers (the same basal draws for every treatment) keep the estimate stable.
    """
    fn = {
        "state": lambda m, s, t: s,
        "expression": _centered_logits,
        "morphology": lambda m, s, t: morphology_raw(m, s, t, 0),
    }[space]
    means = []
    for t in range(len(model.treatment_compound)):
        state, _ = sample_state(model, t, 0, _N_CALIBRATION, np.random.default_rng(seed))
        means.append(fn(model, state, t).mean(axis=0))
    shifts = np.linalg.norm(np.array(means[1:]) - means[0], axis=1)
    return float(np.median(shifts))


def _random_offsets(
    shape: tuple[int, ...], norm: float, rng: np.random.Generator, center: bool
) -> np.ndarray:
    """Random vectors along the last axis, each of L2 norm ``norm`` (mean-free if ``center``)."""
    x = rng.standard_normal(shape)
    if center:
        x -= x.mean(axis=-1, keepdims=True)
    return x * norm / np.linalg.norm(x, axis=-1, keepdims=True)


def _orthogonal_offsets(
    n: int, dim: int, norm: float, rng: np.random.Generator, center: bool
) -> np.ndarray:
    """``(n, dim)`` mutually orthogonal random vectors of L2 norm ``norm`` (mean-free if
    ``center``): any two differ by ``sqrt(2) * norm`` (independent ones if ``n`` > ``dim``)."""
    if n > dim - int(center):
        return _random_offsets((n, dim), norm, rng, center)
    x = rng.standard_normal((dim, n))
    if center:
        x -= x.mean(axis=0, keepdims=True)
    q, _ = np.linalg.qr(x)
    return q.T * norm


def add_batch_effects(
    model: GroundTruthModel, config: SimulatorConfig, rng: np.random.Generator
) -> None:
    """Replicate and well effects, sized from the median treatment effect (set in place; the
    medians go to ``median_effect``).

    - biological: each replicate's culture shifts the hidden state of all its cells; any two
      replicates differ by ``state_batch_ratio`` times the median treatment effect on the state,
      and both modalities see it;
    - technical: offsets in each output space (gene logits; morphology parameters), two
      replicates differing by ``technical_batch_ratio`` times the median effect in that space;
    - wells: an independent offset of ``well_ratio`` times the median, per treatment x replicate.

    Replicate offsets are mutually orthogonal random directions, so all pairs differ equally.
    """
    n_t, n_r = len(model.treatment_compound), config.n_replicates
    spaces = {
        "state": model.basal_chol.shape[0],
        "expression": model.n_genes,
        "morphology": len(MORPHOLOGY_PARAMS),
    }
    model.median_effect = {k: median_treatment_effect(model, k) for k in spaces}
    med = model.median_effect
    d = spaces["state"]
    model.state_batch = _orthogonal_offsets(
        n_r, d, config.state_batch_ratio * med["state"] / np.sqrt(2), rng, False
    )
    for space in ("expression", "morphology"):
        g, center = spaces[space], space == "expression"
        batch = _orthogonal_offsets(
            n_r, g, config.technical_batch_ratio * med[space] / np.sqrt(2), rng, center
        )
        well = _random_offsets((n_t, n_r, g), config.well_ratio * med[space], rng, center)
        if center:
            model.expr_batch, model.expr_well = batch, well
        else:
            model.morph_batch, model.morph_well = batch, well


def add_round_effects(
    model: GroundTruthModel, config: SimulatorConfig, rng: np.random.Generator
) -> None:
    """Experiment-round effects, set in place; nothing with one round (today's experiment).

    A new round brings cells of another passage and another day at the microscope and the
    sequencer. Any two rounds differ, on top of their replicates' effects, by
    ``round_state_ratio`` times the median treatment effect on the hidden state (a drift of
    every cell, seen by both modalities) and by ``round_technical_ratio`` times the median effect
    in each output space (gene logits; morphology parameters); each round's camera gain,
    background and blur and its library size vary on the scale ``round_acquisition_batch``.
    ``rng`` is a stream of its own, so the replicate-level model is that of a one-round run.
    """
    n_k = len(config.round_sizes)
    if n_k < 2:
        return
    med, sqrt2 = model.median_effect, np.sqrt(2)
    model.replicate_round = np.array(config.replicate_round, dtype=np.int64)
    model.round_state = _orthogonal_offsets(
        n_k, model.basal_chol.shape[0], config.round_state_ratio * med["state"] / sqrt2, rng, False
    )
    tech = config.round_technical_ratio
    model.round_expr = _orthogonal_offsets(
        n_k, model.n_genes, tech * med["expression"] / sqrt2, rng, True
    )
    model.round_morph = _orthogonal_offsets(
        n_k, len(MORPHOLOGY_PARAMS), tech * med["morphology"] / sqrt2, rng, False
    )
    a = config.round_acquisition_batch
    model.round_gain = np.exp(a * rng.normal(0.0, 0.1, (n_k, N_CHANNELS)))
    model.round_background = a * rng.uniform(-0.02, 0.02, (n_k, N_CHANNELS))
    model.round_blur = a * rng.uniform(-0.25, 0.25, n_k)
    model.round_library = a * rng.normal(0.0, 0.3, n_k)
