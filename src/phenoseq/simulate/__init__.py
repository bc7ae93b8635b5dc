"""The ground-truth paired simulator: hidden cell state -> rendered Cell Painting cells and
negative-binomial counts, with a known p(expression | treatment) (docs/simulator.md).

Names load on first use, so ``phenoseq.simulate.config`` alone stays light."""

from __future__ import annotations

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(globals(), {
    "CHANNELS": ".render", "SimulatorConfig": ".config", "feature_names": ".features",
    "make_world": ".world", "measure_crops": ".features", "sample_truth": ".truth",
    "simulate": ".core", "summarize_config": ".core",
})  # fmt: skip
