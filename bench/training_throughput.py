"""Training throughput: cells per second of each training phase, fp32 vs bf16 autocast.

    .venv/bin/python bench/training_throughput.py --out bench/out/training_throughput  # ~3 min

Simulates the demo's design (``--features-only``, ``--genes`` genes), then trains the default
architecture for ``--steps`` autoencoder and ``--steps`` diffusion steps with each precision on
``--device`` (auto: a GPU when PyTorch sees one). Step times come from the training loop's
``on_step`` callback (the first 10 steps of each phase are warm-up and not counted), so data
reading, the latent pass and saving are excluded. Ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig
from phenoseq.model import ModelConfig, train_model
from phenoseq.simulate import SimulatorConfig, simulate
from phenoseq.train import TrainConfig, resolve_device

WARMUP = 10


def phase_rates(args, sim: Path, precision: str) -> dict:
    stamps: dict[str, list[float]] = {}

    def on_step(phase: str, step: int) -> None:
        stamps.setdefault(phase, []).append(time.perf_counter())

    inputs = InputConfig(sim / "morphology.h5ad", sim / "expression.h5ad", control="DMSO",
                         split=SplitConfig("replicate", calib=("3",), test=("4",)))  # fmt: skip
    tc = TrainConfig(ae_steps=args.steps, max_steps=args.steps, device=args.device,
                     precision=precision, eval_every=10**9, checkpoint_every=10**9)  # fmt: skip
    train_model(inputs, args.out / f"model_{precision}", ModelConfig(), tc, progress=False,
                on_step=on_step)  # fmt: skip
    cells = {"autoencoder": tc.batch_size, "diffusion": tc.batch_size}
    out = {}
    for phase, t in stamps.items():
        dt = np.diff(t[WARMUP:])
        out[phase] = {"steps_per_s": 1 / dt.mean(), "cells_per_s": cells[phase] / dt.mean()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/training_throughput"))
    ap.add_argument("--genes", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    sim = args.out / "simulated"
    if not (sim / "expression.h5ad").exists():
        simulate(sim, SimulatorConfig(features_only=True, n_genes=args.genes), progress=False)
    device = resolve_device(args.device)
    rows = {p: phase_rates(args, sim, p) for p in ("fp32", "bf16")}
    print(f"device: {device}; {args.genes} genes; batch 256 cells; {args.steps} steps per phase")
    print(f"{'phase':<14}{'fp32 cells/s':>14}{'bf16 cells/s':>14}{'bf16 / fp32':>13}")
    for phase in rows["fp32"]:
        a, b = rows["fp32"][phase]["cells_per_s"], rows["bf16"][phase]["cells_per_s"]
        print(f"{phase:<14}{a:>14.0f}{b:>14.0f}{b / a:>12.2f}x")
    (args.out / "throughput.json").write_text(json.dumps({"device": str(device), **rows}, indent=1))


if __name__ == "__main__":
    main()
