"""Quality vs sampler steps for every sampler, beside the split-half noise floor.

    .venv/bin/python bench/sampler_steps.py --run bench/out/quality/seed0 \\
        --out bench/out/sampler_steps --figure docs/img/bench/sampler_steps.png

One trained demo model (``--run``: a ``bench/quality.py`` seed folder); for each sampler
(DPM-Solver++ 2M, DDIM, DDPM) and 5 / 10 / 20 / 50 / 100 steps it generates 100 cells for every
held-out group and scores the energy distance to the real held-out cells (mean over groups of
seen treatments, in the evaluation's 30-PC space fitted on training expression, generated cells
subsampled to the real count). The split-half line is the same distance between two halves of
the real cells (the noise floor); sampling seconds are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import anndata as ad
import numpy as np

from phenoseq import _keys as K
from phenoseq.data.transforms import dense, log1p_view
from phenoseq.evaluate.distances import energy_distance, subsample_to
from phenoseq.evaluate.space import fit_space
from phenoseq.model import PhenoSeqModel, load_training
from phenoseq.uncertainty import novel_groups

SAMPLERS = ("dpmpp_2m", "ddim", "ddpm")
STEPS = (5, 10, 20, 50, 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench/out/sampler_steps"))
    ap.add_argument("--figure", type=Path, default=None)
    args = ap.parse_args()
    model = PhenoSeqModel.load(args.run / "model")
    reg = model.registry
    train = load_training(model)
    t_expr = train.expression[train.expression.obs[K.ROLE] == "train"]
    space = fit_space(log1p_view(t_expr[:, reg.genes].X, reg.kind), seed=0)
    morph = ad.read_h5ad(args.run / "heldout_morphology.h5ad")
    real = ad.read_h5ad(args.run / "heldout_expression.h5ad")
    real_pc = space.transform(log1p_view(real[:, reg.genes].X, reg.kind))
    real_g = real.obs["Sample_ID"].astype(str).to_numpy()
    seen = [
        g for g in np.unique(real_g) if g not in set(novel_groups(model, list(np.unique(real_g))))
    ]
    rng = np.random.default_rng(0)
    halves = []
    for g in seen:
        x = rng.permutation(real_pc[real_g == g])
        halves.append(energy_distance(x[: len(x) // 2], x[len(x) // 2 :]))
    rows = []
    for sampler in SAMPLERS:
        for steps in STEPS:
            t0 = time.monotonic()
            gen = model.generate(morph, n_cells=100, n_steps=steps, sampler=sampler, seed=0,
                                 progress=False)  # fmt: skip
            seconds = time.monotonic() - t0
            pc = space.transform(dense(gen.layers[K.LOG1P] if K.LOG1P in gen.layers else gen.X))
            gg = gen.obs[K.GROUP].astype(str).to_numpy()
            eds = [energy_distance(subsample_to(pc[gg == g], (real_g == g).sum(), rng),
                                   real_pc[real_g == g]) for g in seen]  # fmt: skip
            rows.append({"sampler": sampler, "steps": steps, "ed_seen": float(np.mean(eds)),
                         "seconds": seconds})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    floor = float(np.mean(halves))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rows.json").write_text(json.dumps({"rows": rows, "split_half": floor}, indent=1))
    lines = ["| sampler | " + " | ".join(f"{s} steps" for s in STEPS) + " |",
             "|---|" + "---:|" * len(STEPS)]  # fmt: skip
    for sampler in SAMPLERS:
        r = {x["steps"]: x for x in rows if x["sampler"] == sampler}
        lines.append(f"| {sampler} | " + " | ".join(
            f"{r[s]['ed_seen']:.2f} ({r[s]['seconds']:.0f} s)" for s in STEPS) + " |")  # fmt: skip
    lines.append(f"\nsplit-half floor: {floor:.3f}")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for sampler in SAMPLERS:
            r = [x for x in rows if x["sampler"] == sampler]
            ax.plot([x["steps"] for x in r], [x["ed_seen"] for x in r], marker="o", label=sampler)
        ax.axhline(floor, color="grey", ls="--", label="split-half (noise floor)")
        ax.set_xscale("log")
        ax.set_xticks(STEPS, [str(s) for s in STEPS])
        ax.set_xlabel("sampler steps")
        ax.set_ylabel("energy distance to real cells (seen, ↓)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=110)


if __name__ == "__main__":
    main()
