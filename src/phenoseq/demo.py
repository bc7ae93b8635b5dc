"""The end-to-end demo on embedded (simulated) data: simulate -> validate -> train -> generate ->
evaluate against the real held-out replicate -> HTML report. ``phenoseq demo`` wraps it; with
``from_images`` the simulator renders every well and ``featurize`` measures the cells first."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import _keys as K
from .config import InputConfig, ModelConfig, SampleConfig, SplitConfig, TrainConfig, override
from .data import load_paired, summarize
from .evaluate.run import evaluate, write_evaluation
from .imaging import FeaturizeConfig, SegmentConfig, featurize_images
from .io import write_h5ad, write_json
from .model import train_model
from .report.html import write_report
from .simulate import SimulatorConfig, simulate


@dataclass
class DemoConfig:
    """Sizes of the demo (defaults: the whole run in a few minutes on 2 CPU cores)."""

    seed: int = 0
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)  # its seed: the demo's
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
    """Run the whole pipeline into ``out``; returns (and writes) the summary."""
    cfg, out = config or DemoConfig(), Path(out)
    t0 = time.monotonic()
    sim_cfg = cfg.simulator.replace(seed=cfg.seed, write_images=cfg.from_images)
    sim = simulate(out / "simulated", sim_cfg, progress=progress)
    t_sim = time.monotonic() - t0
    morphology, t_feat = sim / "morphology.h5ad", 0.0
    if cfg.from_images:
        morphology = out / "featurized.h5ad"
        seg = SegmentConfig.for_nucleus_diameter(cfg.nucleus_diameter)
        featurize_images(morphology, sim / "images", SIM_CHANNEL_MAP, pattern=SIM_PATTERN,
                         platemap=sim / "images" / "platemap.tsv",
                         config=FeaturizeConfig(segment=seg), progress=progress)  # fmt: skip
        t_feat = time.monotonic() - t0 - t_sim
    inputs = InputConfig(
        morphology, sim / "expression.h5ad", control="DMSO",
        split=SplitConfig("replicate", calib=(cfg.calib,), test=(cfg.test,)),
    )  # fmt: skip
    paired = load_paired(inputs)
    summary = summarize(paired)
    model = train_model(inputs, out / "model", cfg.model, cfg.train, progress=progress)
    t_train = time.monotonic() - t0 - t_sim - t_feat
    test = {
        k: a[a.obs[K.ROLE] == "test"].copy()
        for k, a in (("morphology", paired.morphology), ("expression", paired.expression))
    }
    for k in ("morphology", "expression"):  # the held-out files `phenoseq evaluate` reads
        test[k].obs = test[k].obs.drop(columns=[K.GROUP, K.ROLE])
        write_h5ad(test[k], out / f"heldout_{k}.h5ad")
    generated = model.generate(test["morphology"], override(cfg.sample, seed=cfg.seed),
                               progress=progress)  # fmt: skip
    write_h5ad(generated, out / "generated.h5ad")
    t1 = time.monotonic()
    ev = evaluate(model, generated, test["expression"], test["morphology"], seed=cfg.seed,
                  progress=progress)  # fmt: skip
    write_evaluation(ev, out / "metrics.json")
    write_report(out / "metrics.json", out / "report.html")
    result = {
        "data": summary,
        "metrics": ev.metrics,
        "seconds": {"simulate": t_sim, "featurize": t_feat, "train": t_train,
                    "evaluate": time.monotonic() - t1, "total": time.monotonic() - t0},
        "report": str(out / "report.html"),
    }  # fmt: skip
    write_json(result, out / "summary.json")
    return result
