"""Calibrating on one replicate vs two: coverage on a third held-out replicate, per seed.

    .venv/bin/python bench/calibration_replicates.py --seeds 0 1 2 --out bench/out/calib_reps
    # ~8 min per seed

Simulates 5 replicates (seed-specific data), trains the demo model on replicates 1-2 (default
steps), then calibrates the *same* model three ways — on replicate 3 only, on replicate 4 only,
and on both with the replicate as the conformal unit — and scores each calibration's intervals
on replicate 5 (pseudo-bulk coverage at 50/80/90/95%, seen and unseen treatments, and the
width at 90%). One calibration replicate calibrates to that replicate's difficulty; with two,
each gene's multiplier is the larger of the two replicates' (the unit is the replicate).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from phenoseq.config import InputConfig, ModelConfig, SampleConfig, SplitConfig, TrainConfig
from phenoseq.evaluate.uncertainty import coverage
from phenoseq.model import load_training, real_pseudobulk, train_model
from phenoseq.simulate import SimulatorConfig, simulate
from phenoseq.uncertainty import (
    LEVELS,
    calibrate,
    novel_groups,
    summarize,
)

WAYS = {"replicate 3": ("3",), "replicate 4": ("4",), "replicates 3+4": ("3", "4")}


def one(seed: int, out: Path) -> dict:
    sim = simulate(out / "simulated", SimulatorConfig(seed=seed, n_replicates=5))
    split = SplitConfig("replicate", calib=("3", "4"), test=("5",))
    inputs = InputConfig(sim / "morphology.h5ad", sim / "expression.h5ad", control="DMSO",
                         split=split)  # fmt: skip
    model = train_model(inputs, out / "model", ModelConfig(), TrainConfig(seed=seed),
                        progress=False)  # fmt: skip
    paired = load_training(model)

    def rows(a, reps):
        return a[a.obs["Replicate"].astype(str).isin(reps).to_numpy()].copy()

    m_test, e_test = rows(paired.morphology, ("5",)), rows(paired.expression, ("5",))
    real = real_pseudobulk(model, e_test)
    res = {}
    for name, reps in WAYS.items():
        cal = calibrate(model, rows(paired.morphology, reps), rows(paired.expression, reps),
                        sample=SampleConfig(seed=seed), progress=False)  # fmt: skip
        s = summarize(model, m_test, cal, sample=SampleConfig(seed=seed), progress=False)
        novel = set(novel_groups(model, list(s.obs_names)))
        seen = [g for g in s.obs_names if g not in novel and g in real.index]
        unseen = [g for g in s.obs_names if g in novel and g in real.index]
        cov, cov_new = coverage(s[seen], real), coverage(s[unseen], real)
        res[name] = {f"{lv:g}": cov[f"{lv:g}"]["coverage"] for lv in LEVELS} | {
            f"unseen/{lv:g}": cov_new[f"{lv:g}"]["coverage"] for lv in LEVELS} | {
            "width/0.9": cov["0.9"]["mean_width"], "guarantee": cal.guarantee}  # fmt: skip
        print(f"seed {seed} {name}: " + " ".join(f"{res[name][f'{lv:g}']:.3f}" for lv in LEVELS),
              flush=True)  # fmt: skip
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("bench/out/calib_reps"))
    args = ap.parse_args()
    runs = {s: one(s, args.out / f"seed{s}") for s in args.seeds}
    print(f"\nseen-treatment pseudo-bulk coverage on replicate 5, mean ± sd over {len(runs)} seeds")
    print("| calibrated on | " + " | ".join(f"{lv:g}" for lv in LEVELS) + " |")
    print("|---|" + "---:|" * len(LEVELS))
    for prefix in ("", "unseen/"):
        print(f"\n{'unseen' if prefix else 'seen'} treatments")
        for name in WAYS:
            cells = []
            for lv in LEVELS:
                v = np.array([runs[s][name][f"{prefix}{lv:g}"] for s in runs], float)
                cells.append(
                    f"{np.nanmean(v):.3f} ± {np.nanstd(v, ddof=1) if len(v) > 1 else 0:.3f}"
                )
            w = np.mean([runs[s][name]["width/0.9"] for s in runs])
            print(f"| {name} | " + " | ".join(cells) + f" | width 0.9 {w:.2f} |")
    (args.out / "coverage.json").write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
