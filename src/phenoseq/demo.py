"""The end-to-end demo on embedded (simulated) data: simulate -> validate -> train -> generate ->
evaluate against the real held-out replicate -> HTML report. ``phenoseq demo`` wraps it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import _keys as K
from .config import InputConfig
from .data import SplitConfig, load_paired, summarize
from .evaluate.run import evaluate, write_evaluation
from .io import write_h5ad, write_json
from .model import ModelConfig, train_model
from .report.html import write_report
from .simulate import SimulatorConfig, simulate
from .train import TrainConfig


@dataclass
class DemoConfig:
    """Sizes of the demo (defaults: the whole run in a few minutes on 2 CPU cores)."""

    seed: int = 0
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    n_cells: int = 100
    n_steps: int = 20
    guidance: float = 1.0
    calib: str = "3"
    test: str = "4"


def run_demo(out: str | Path, config: DemoConfig | None = None, progress: bool = True) -> dict:
    """Run the whole pipeline into ``out``; returns (and writes) the summary."""
    cfg, out = config or DemoConfig(), Path(out)
    t0 = time.monotonic()
    sim = simulate(out / "simulated", cfg.simulator.replace(seed=cfg.seed), progress=progress)
    t_sim = time.monotonic() - t0
    inputs = InputConfig(
        sim / "morphology.h5ad", sim / "expression.h5ad", control="DMSO",
        split=SplitConfig("replicate", calib=(cfg.calib,), test=(cfg.test,)),
    )  # fmt: skip
    paired = load_paired(inputs)
    summary = summarize(paired)
    model = train_model(inputs, out / "model", cfg.model, cfg.train, progress=progress)
    t_train = time.monotonic() - t0 - t_sim
    test = {
        k: a[a.obs[K.ROLE] == "test"].copy()
        for k, a in (("morphology", paired.morphology), ("expression", paired.expression))
    }
    for k in ("morphology", "expression"):  # the held-out files `phenoseq evaluate` reads
        test[k].obs = test[k].obs.drop(columns=[K.GROUP, K.ROLE])
        write_h5ad(test[k], out / f"heldout_{k}.h5ad")
    generated = model.generate(test["morphology"], cfg.n_cells, cfg.n_steps, cfg.guidance,
                               seed=cfg.seed, progress=progress)  # fmt: skip
    write_h5ad(generated, out / "generated.h5ad")
    t1 = time.monotonic()
    ev = evaluate(model, generated, test["expression"], test["morphology"], seed=cfg.seed,
                  progress=progress)  # fmt: skip
    write_evaluation(ev, out / "metrics.json")
    write_report(out / "metrics.json", out / "report.html")
    result = {
        "data": summary,
        "metrics": ev.metrics,
        "seconds": {"simulate": t_sim, "train": t_train, "evaluate": time.monotonic() - t1,
                    "total": time.monotonic() - t0},
        "report": str(out / "report.html"),
    }  # fmt: skip
    write_json(result, out / "summary.json")
    return result
