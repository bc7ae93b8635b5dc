"""The end-to-end demo on embedded (simulated) data: simulate -> validate -> train -> generate ->
score against the real held-out replicate, printing one summary. ``phenoseq demo`` wraps it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np

from . import _keys as K
from .config import InputConfig
from .data import SplitConfig, load_paired, summarize
from .evaluate.heldout import (
    Cells,
    energy_by_group,
    fit_space,
    identification_suite,
    split_half_by_group,
    train_mean_cells,
)
from .evaluate.space import log1p_view
from .io import write_h5ad, write_json
from .model import ModelConfig, train_model
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


def score_heldout(paired, generated: ad.AnnData, seed: int = 0) -> dict:
    """Energy distance per held-out group (model, train-mean, split-half) and identification."""
    rng = np.random.default_rng(seed)
    expr, morph = paired.expression, paired.morphology
    kind = expr.uns.get(K.UNS, {}).get(K.EXPRESSION_KIND, "counts")
    e_role, m_role = expr.obs[K.ROLE].to_numpy(), morph.obs[K.ROLE].to_numpy()
    labels = paired.groups["label"]
    logx = log1p_view(expr.X, kind)
    space = fit_space(logx[e_role == "train"], seed=seed)

    def cells(x, obs) -> Cells:
        g = obs[K.GROUP].astype(str).to_numpy()
        return Cells(x, g, labels.reindex(g).to_numpy().astype(str))

    real = cells(space.transform(logx), expr.obs)
    real_train, real_test = real.take(e_role == "train"), real.take(e_role == "test")
    gen = cells(space.transform(log1p_view(generated.X, kind)), generated.obs)
    gen = gen.take(np.isin(gen.groups, real_test.groups))
    baseline = train_mean_cells(
        real_train, real_test, len(gen.x) // max(1, len(np.unique(gen.groups))), rng
    )
    seen_labels = set(real_train.labels)
    table = {
        "model": energy_by_group(real_test, gen, rng),
        "train_mean": energy_by_group(real_test, baseline, rng),
        "split_half": split_half_by_group(real_test, rng),
    }
    group_label = dict(zip(real_test.groups, real_test.labels, strict=True))
    out: dict = {"energy_distance": {}}
    for name, series in table.items():
        seen = [g for g in series.index if group_label[g] in seen_labels]
        unseen = [g for g in series.index if group_label[g] not in seen_labels]
        out["energy_distance"][name] = {
            "seen": float(series[seen].mean()) if seen else float("nan"),
            "unseen": float(series[unseen].mean()) if unseen else float("nan"),
        }
    mx = np.asarray(morph.X, dtype=np.float64)
    m_all = cells(mx, morph.obs)
    out["treatment_identification"] = identification_suite(
        m_all.take(m_role == "train"),
        m_all.take(m_role == "test"),
        real_train,
        real_test,
        gen,
        seed,
    )
    return out


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
    morph = paired.morphology
    test_morph = morph[morph.obs[K.ROLE] == "test"].copy()
    generated = model.generate(test_morph, cfg.n_cells, cfg.n_steps, cfg.guidance, seed=cfg.seed,
                               progress=progress)  # fmt: skip
    write_h5ad(generated, out / "generated.h5ad")
    scores = score_heldout(paired, generated, cfg.seed)
    result = {
        "data": summary,
        "scores": scores,
        "seconds": {"simulate": t_sim, "train": t_train, "total": time.monotonic() - t0},
    }
    write_json(result, out / "summary.json")
    return result
