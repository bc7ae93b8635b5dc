"""The ground-truth paired simulator: hidden cell state -> rendered Cell Painting cells and
negative-binomial counts, with a known p(expression | treatment) (docs/simulator.md)."""

from __future__ import annotations

from .config import SimulatorConfig
from .core import simulate, summarize_config
from .features import feature_names, measure_crops
from .render import CHANNELS
from .truth import sample_truth
from .world import make_world

__all__ = [
    "CHANNELS",
    "SimulatorConfig",
    "feature_names",
    "make_world",
    "measure_crops",
    "sample_truth",
    "simulate",
    "summarize_config",
]
