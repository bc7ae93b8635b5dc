"""The end-to-end demo on embedded (simulated) data: simulate -> train -> calibrate -> generate
cells and the per-well summary for the held-out replicate -> evaluate against its real cells ->
the evaluation and the prediction reports. ``phenoseq demo`` wraps it; with ``from_images`` the
simulator renders every well and ``featurize`` measures the cells first."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import _keys as K
from .config import (
    InputConfig,
    ModelConfig,
    SampleConfig,
    SplitConfig,
    TrainConfig,
    UncertaintyConfig,
    override,
)
from .data import load_paired
from .data import summarize as summarize_inputs
from .evaluate.run import evaluate, write_evaluation
from .imaging import FeaturizeConfig, SegmentConfig, featurize_images
from .io import write_h5ad, write_json
from .model import train_model
from .report.html import write_report
from .report.prediction import write_prediction_report
from .simulate import SimulatorConfig, simulate
from .uncertainty import calibrate, summarize


@dataclass
class DemoConfig:
    """Sizes of the demo (defaults: the whole run in a few minutes on 2 CPU cores)."""

    seed: int = 0
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)  # its seed: the demo's
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    calib: str = "3"
    test: str = "4"
    # images -> featurize -> train ...: the simulator renders every sample's fields and the
    # morphology comes from `phenoseq featurize` instead of the simulator's own features
    from_images: bool = False
    nucleus_diameter: float = 24.0  # featurize setting for the simulated fields


def demo_config(seed: int = 0, max_steps: int | None = None, ae_steps: int | None = None,
                from_images: bool = False) -> DemoConfig:  # fmt: skip
    """The demo's settings for ``phenoseq demo``: the default model and sampler, the given
    training steps, and a 7-minute bound on training (a safety net on slow machines; a normal
    run finishes well before it)."""
    train = override(TrainConfig(seed=seed, max_minutes=7.0), max_steps=max_steps,
                     ae_steps=ae_steps)  # fmt: skip
    return DemoConfig(seed=seed, train=train, from_images=from_images)


SIM_CHANNEL_MAP = "DNA=_DNA,ER=_ER,RNA=_RNA,AGP=_AGP,Mito=_Mito"
SIM_PATTERN = r"(?P<plate>SIM-P\d+)_(?P<well>[A-P]\d+)_s(?P<site>\d+)_"


def run_demo(out: str | Path, config: DemoConfig | None = None, progress: bool = True) -> dict:
    """Run the whole pipeline into ``out``; returns (and writes) the summary.

    Simulate (or render and featurize) -> train on the training replicates -> calibrate on the
    calibration replicate -> generate cells and the per-well summary (intervals, confidence,
    OOD flag) for the test replicate, as for wells never sequenced -> evaluate against their
    real cells -> the evaluation report (``report.html``) and the prediction report
    (``prediction.html``)."""
    cfg, out = config or DemoConfig(), Path(out)
    t = {"start": time.monotonic()}
    inputs = _inputs(out, cfg, progress, t)
    paired = load_paired(inputs)
    model = train_model(inputs, out / "model", cfg.model, cfg.train, progress=progress)
    t["train"] = time.monotonic()
    test, calib = _held_out(paired, "test", out), _held_out(paired, "calib")
    sample = override(cfg.sample, seed=cfg.seed)
    cal = calibrate(model, calib["morphology"], calib["expression"], cfg.uncertainty, sample,
                    progress)  # fmt: skip
    cal.save(out / "model")
    generated = model.generate(test["morphology"], sample, progress=progress)
    write_h5ad(generated, out / "generated.h5ad")
    summ = summarize(model, test["morphology"], cal, cfg.uncertainty, sample, progress)
    write_h5ad(summ, out / "prediction_summary.h5ad")
    t["generate"] = time.monotonic()
    ev = evaluate(model, generated, test["expression"], test["morphology"], seed=cfg.seed,
                  progress=progress, summary=summ)  # fmt: skip
    write_evaluation(ev, out / "metrics.json")
    write_report(out / "metrics.json", out / "report.html")
    write_prediction_report(summ, out / "prediction.html", generated, metrics=ev.metrics)
    t["evaluate"] = time.monotonic()
    result = {"data": summarize_inputs(paired), "metrics": ev.metrics,
              "seconds": _durations(t), "report": str(out / "report.html"),
              "prediction_report": str(out / "prediction.html")}  # fmt: skip
    write_json(result, out / "summary.json")
    return result


def _inputs(out: Path, cfg: DemoConfig, progress: bool, t: dict) -> InputConfig:
    """Simulate the data (and, from images, render and featurize it); the training inputs."""
    sim = simulate(out / "simulated", cfg.simulator.replace(seed=cfg.seed,
                   write_images=cfg.from_images), progress=progress)  # fmt: skip
    t["simulate"] = time.monotonic()
    morphology = sim / "morphology.h5ad"
    if cfg.from_images:
        morphology = out / "featurized.h5ad"
        seg = SegmentConfig.for_nucleus_diameter(cfg.nucleus_diameter)
        featurize_images(morphology, sim / "images", SIM_CHANNEL_MAP, pattern=SIM_PATTERN,
                         platemap=sim / "images" / "platemap.tsv",
                         config=FeaturizeConfig(segment=seg), progress=progress)  # fmt: skip
    t["featurize"] = time.monotonic()
    split = SplitConfig("replicate", calib=tuple(cfg.calib.split(",")),
                        test=tuple(cfg.test.split(",")))  # fmt: skip
    return InputConfig(morphology, sim / "expression.h5ad", control="DMSO", split=split)


def _held_out(paired, role: str, out: Path | None = None) -> dict:
    """The morphology and expression of one held-out role (written as ``heldout_*.h5ad`` for
    ``phenoseq evaluate`` when ``out`` is given)."""
    parts = {
        k: a[a.obs[K.ROLE] == role].copy()
        for k, a in (("morphology", paired.morphology), ("expression", paired.expression))
    }
    for k, a in parts.items():
        a.obs = a.obs.drop(columns=[K.GROUP, K.ROLE])
        if out is not None:
            write_h5ad(a, out / f"heldout_{k}.h5ad")
    return parts


def _durations(t: dict) -> dict:
    steps = ("simulate", "featurize", "train", "generate", "evaluate")
    times = [t["start"], *(t[s] for s in steps)]
    out = {s: b - a for s, a, b in zip(steps, times, times[1:], strict=False)}
    return out | {"total": t["evaluate"] - t["start"]}
