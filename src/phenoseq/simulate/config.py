"""The simulator's one typed configuration: every parameter, its default and its check."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

from ..errors import InputError


@dataclass(frozen=True)
class SimulatorConfig:
    """Every parameter of the ground-truth simulator (defaults documented in docs/simulator.md).

    Sizes are per sample (one treatment in one replicate) unless stated otherwise.
    """

    # run
    seed: int = 0
    features_only: bool = False  # no crops: morphology features from a fitted surrogate
    write_images: bool = False  # every sample's fields as PNGs + platemap.tsv (images/)
    chunk_size: int = 2048  # rows generated and written per step (bounds memory)

    # design
    n_treatments: int = 30  # non-control treatments (compound x dose); DMSO comes on top
    doses: tuple[float, ...] = (0.1, 1.0, 10.0)  # micromolar
    n_unseen_compounds: int = 2  # compounds present only in the held-out replicates
    n_replicates: int = 4  # roles: train x, calib, test
    rounds: tuple[int, ...] = ()  # replicates per experiment round; () = one round of all
    n_morphology_cells: int = 48
    n_expression_cells: int = 100
    n_truth_cells: int = 300
    n_sites: int = 4  # imaging sites per well
    n_genes: int = 500

    # hidden cell state
    n_programs: int = 8
    n_hidden_programs: int = 2  # programs that barely show in morphology (last ones)
    hidden_visibility: float = 0.15  # their weight in the morphology map
    program_correlation: float = 0.3
    cycling_fraction: float = 0.3  # bimodal program 0 (a cell-cycle-like state)

    # treatments
    effect_size: float = 14.0  # median responder shift at saturating dose (basal SDs)
    potency_sd: float = 0.35  # log-normal spread of compound potency
    hill: float = 1.0
    ec50_range: tuple[float, float] = (0.3, 3.0)  # micromolar, log-uniform
    responder_range: tuple[float, float] = (0.75, 0.98)  # fraction of responding cells
    programs_per_compound: int = 2
    unit_input_sd: float = 0.2  # input weights of the nonlinear units of both modalities' maps
    responder_dependence: float = 0.4  # SD of the basal-state weights of the responder logit
    amplitude_heterogeneity: float = 0.2  # responders' amplitude varies by +-this (state-driven)

    # batch effects, relative to the median treatment effect (mean shift from DMSO) per modality
    state_batch_ratio: float = 0.3  # replicate-to-replicate shift of the hidden state
    technical_batch_ratio: float = 0.7  # replicate-to-replicate offset in each output space
    well_ratio: float = 0.1
    acquisition_batch: float = 0.5  # scale of per-replicate channel gain, background and blur
    # experiment rounds (only with several rounds), relative to the same median treatment effects
    round_state_ratio: float = 0.6  # round-to-round drift of the hidden state
    round_technical_ratio: float = 1.4  # round-to-round offset in each output space
    round_acquisition_batch: float = 1.0  # scale of per-round channel gain, background and blur

    # expression
    median_umis: float = 3000.0
    library_sd: float = 0.3
    inverse_dispersion: float = 4.0  # median NB theta across genes
    gene_sd: float = 1.2  # spread of baseline log-abundance
    n_expression_units: int = 16  # rank of the nonlinear part of the state -> gene map
    loading_sd: float = 0.2
    loading_density: float = 0.1

    # morphology
    n_morphology_units: int = 8  # rank of the nonlinear part of the state -> morphology map
    morphology_loading_sd: float = 0.4
    morphology_loading_density: float = 0.5
    morphology_noise: float = 0.5  # per-cell SD of state-independent morphology variation
    crop_size: int = 64
    photons: float = 300.0  # photons at unit signal (shot-noise level)
    n_fields: int = 8
    field_size: int = 256
    n_surrogate_cells: int = 2048  # rendered cells used to fit the features-only surrogate

    def __post_init__(self) -> None:
        validate(self)

    @property
    def round_sizes(self) -> tuple[int, ...]:
        """Replicates in each experiment round (one round of all replicates by default)."""
        return self.rounds or (self.n_replicates,)

    @property
    def replicate_round(self) -> list[int]:
        """Round index (0-based) of each replicate: replicates are numbered round by round."""
        return [k for k, size in enumerate(self.round_sizes) for _ in range(size)]

    @property
    def n_compounds(self) -> int:
        """Compounds needed to make ``n_treatments`` compound x dose combinations."""
        return math.ceil(self.n_treatments / len(self.doses))

    def replace(self, **changes: Any) -> SimulatorConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/h5ad-friendly dict (tuples as lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulatorConfig:
        """Inverse of :meth:`to_dict` (numpy scalars and arrays accepted)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        out: dict[str, Any] = {}
        for k, v in values.items():
            if k not in known:
                continue
            if hasattr(v, "tolist"):
                v = v.tolist()
            out[k] = tuple(v) if isinstance(v, list) else v
        return cls(**out)


def _require(ok: bool, problem: str, fix: str) -> None:
    if not ok:
        raise InputError(problem, fix)


def _validate_rounds(c: SimulatorConfig) -> None:
    if c.rounds:
        _require(
            all(isinstance(k, numbers.Integral) and k >= 1 for k in c.rounds),
            f"rounds {c.rounds} must be whole numbers >= 1 (replicates per round).",
            "pass --rounds like 4,1",
        )
        _require(
            sum(c.rounds) == c.n_replicates,
            f"rounds {c.rounds} hold {sum(c.rounds)} replicates, not {c.n_replicates}.",
            f"use --n-replicates {sum(c.rounds)} or round sizes that sum to {c.n_replicates}",
        )
        _require(
            c.rounds[0] >= 2,
            f"round 1 has {c.rounds[0]} replicate; it needs a training and a test replicate.",
            "give round 1 >= 2 replicates, e.g. --rounds 4,1",
        )
    for name in ("round_state_ratio", "round_technical_ratio", "round_acquisition_batch"):
        _require(getattr(c, name) >= 0, f"{name} is negative.", f"use {name} >= 0")


def validate(config: SimulatorConfig) -> SimulatorConfig:
    """Check a configuration; raise :class:`InputError` naming the bad parameter and the fix."""
    c = config
    _require(c.seed >= 0, f"seed={c.seed} is negative.", "use --seed >= 0")
    _require(c.n_treatments >= 2, f"n_treatments={c.n_treatments} < 2.", "use --n-treatments >= 2")
    _require(
        len(c.doses) >= 1 and all(d > 0 for d in c.doses),
        f"doses {c.doses} must be positive and non-empty.",
        "pass --doses like 0.1,1,10",
    )
    _require(c.n_replicates >= 2, f"n_replicates={c.n_replicates} < 2.", "use --n-replicates >= 2")
    _validate_rounds(c)
    where = f"in round 1 (rounds={c.rounds})" if c.rounds else f"(n_replicates={c.n_replicates})"
    _require(
        c.n_unseen_compounds == 0 or c.round_sizes[0] >= 3,
        f"unseen compounds need a train, a calibration and a test replicate {where}.",
        ("give round 1 >= 3 replicates" if c.rounds else "use --n-replicates >= 3")
        + " or --n-unseen-compounds 0",
    )
    _require(
        0 <= c.n_unseen_compounds < c.n_compounds,
        f"n_unseen_compounds={c.n_unseen_compounds} leaves no seen compound "
        f"({c.n_compounds} compounds).",
        "lower --n-unseen-compounds or raise --n-treatments",
    )
    for name in ("n_morphology_cells", "n_expression_cells", "n_truth_cells", "n_sites"):
        _require(
            getattr(c, name) >= 1, f"{name} must be >= 1.", f"raise --{name.replace('_', '-')}"
        )
    _require(c.n_genes >= 10, f"n_genes={c.n_genes} < 10.", "use --n-genes >= 10")
    _require(c.n_programs >= 2, "n_programs must be >= 2.", "raise n_programs")
    _require(
        0 <= c.n_hidden_programs < c.n_programs,
        "n_hidden_programs must be in [0, n_programs).",
        "lower n_hidden_programs",
    )
    _require(c.crop_size >= 32, "crop_size must be >= 32 pixels.", "raise crop_size")
    _require(c.field_size >= c.crop_size, "field_size < crop_size.", "raise field_size")
    _require(c.chunk_size >= 1, "chunk_size must be >= 1.", "use --chunk-size >= 1")
    _require(c.n_fields >= 0, "n_fields must be >= 0.", "use --n-fields >= 0")
    _require(not (c.write_images and c.features_only), "write_images needs rendered cells.",
             "drop --features-only or --images")  # fmt: skip
    _require(
        0 < c.responder_range[0] <= c.responder_range[1] < 1,
        "responder_range must satisfy 0 < low <= high < 1.",
        "fix responder_range",
    )
    _require(c.median_umis > 0 and c.inverse_dispersion > 0, "bad NB parameters.", "use > 0")
    _require(
        1 <= c.programs_per_compound <= c.n_programs,
        "programs_per_compound must be in [1, n_programs].",
        "fix programs_per_compound",
    )
    return c
