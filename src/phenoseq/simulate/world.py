"""What every part of a run shares: the named random streams, the block size, and the world
(configuration, design and hidden model) with its morphology blocks.

Every random draw comes from ``default_rng([seed, stream, sample, block])``: outputs do not
depend on ``chunk_size`` or on the order files are written in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .build import add_round_effects, build_model
from .config import SimulatorConfig
from .design import Design, make_design
from .model import GroundTruthModel, morphology_params, sample_state

BLOCK = 256  # cells drawn with one generator; fixes the random stream whatever chunk_size is
_STREAMS = {
    "design": 0,
    "model": 1,
    "morphology": 2,
    "expression": 3,
    "truth": 4,
    "fields": 5,
    "surrogate": 6,
    "sample_truth": 7,
    "images": 8,
    "rounds": 9,
}


@dataclass(frozen=True)
class World:
    """A configuration with its design and hidden model."""

    config: SimulatorConfig
    design: Design
    model: GroundTruthModel


def stream_rng(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """The generator of one named random stream (``keys``: sample, block, ...) of a seed."""
    return np.random.default_rng([seed, _STREAMS[stream], *keys])


def make_world(config: SimulatorConfig) -> World:
    """Design (treatments, unseen compounds, rounds, plate map) and hidden model of ``config``
    (round effects drawn from their own stream)."""
    design = make_design(config, stream_rng(config.seed, "design"))
    model = build_model(config, design.treatments, stream_rng(config.seed, "model"))
    add_round_effects(model, config, stream_rng(config.seed, "rounds"))
    return World(config, design, model)


def morphology_block(
    world: World, s: int, t: int, r: int, b: int, n: int
) -> tuple[np.ndarray, np.random.Generator]:
    """Morphology parameters of block ``b`` (``n`` cells) of sample ``s``, and its generator
    positioned after them: rendering continues the same stream, so the feature table, the crops
    and the rendered wells (``fields.well_images``) show the same cells."""
    rng = stream_rng(world.config.seed, "morphology", s, b)
    state, _ = sample_state(world.model, t, r, n, rng)
    return morphology_params(world.model, state, t, r, rng), rng
