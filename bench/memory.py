"""Bounded memory: peak resident memory of simulate / train / generate vs the number of cells.

    .venv/bin/python bench/memory.py --out bench/out/memory         # 100k cells, 300 steps, ~6 min
    .venv/bin/python bench/memory.py --out bench/out/memory_1m --cells 1000000 --steps 1000 \
        --no-in-memory                                              # ~17 min

Each step runs as its own process under ``/usr/bin/time -v`` (peak RSS = "Maximum resident set
size"; wall time):

1. ``phenoseq simulate --features-only`` with ``--cells`` sequenced *and* imaged cells over
   the design's 112 samples, ``--genes`` genes (measured separately, as the issue asks);
2. ``phenoseq train --backed`` for ``--steps`` autoencoder + ``--steps`` diffusion steps
   (expression ``X`` stays on disk: validated, sampled and encoded block by block);
3. the same training ``--in-memory`` (the baseline; skipped with ``--no-in-memory``, e.g. at
   1M cells, where the dense arrays alone would need ~16 GB);
4. ``phenoseq generate`` for the groups of held-out replicate 4 (streams its .h5ad group by
   group) vs the in-memory ``phenoseq.generate`` + ``write_h5ad`` through the Python API.

Prints one table and writes ``<out>/memory.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

PY = Path(sys.executable)
PHENOSEQ = [str(PY), "-m", "phenoseq"]
SAMPLES = 112  # samples of the default design (31 treatments x 4 replicates, minus unseen)

IN_MEMORY_GENERATE = """
import sys
from phenoseq.model import PhenoSeqModel
from phenoseq.data import read_morphology
from phenoseq.io import write_h5ad
m = read_morphology(sys.argv[1])
model = PhenoSeqModel.load(sys.argv[2])
write_h5ad(model.generate(m, n_cells=int(sys.argv[4]), progress=False), sys.argv[3])
"""


def timed(cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` under /usr/bin/time -v; peak RSS (GiB) and wall seconds."""
    res = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    log.write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", res.stderr)
    parts = [float(p) for p in wall.group(1).split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return {"peak_gib": rss / 2**20, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/memory"))
    ap.add_argument("--cells", type=int, default=100_000, help="sequenced (and imaged) cells")
    ap.add_argument("--genes", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=300, help="steps of each training phase")
    ap.add_argument("--gen-cells", type=int, default=200, help="cells per held-out group")
    ap.add_argument("--no-in-memory", action="store_true", help="skip the in-memory baselines")
    ap.add_argument("--reuse", action="store_true", help="keep an existing simulation")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sim, rows = args.out / "simulated", {}
    per_sample = -(-args.cells // SAMPLES)
    if not (args.reuse and (sim / "expression.h5ad").exists()):
        shutil.rmtree(sim, ignore_errors=True)
        rows["simulate"] = timed(
            [*PHENOSEQ, "simulate", "--out", str(sim), "--features-only", "--quiet",
             "--n-genes", str(args.genes), "--n-cells-per-sample", str(per_sample)],
            args.out / "simulate.log",
        )  # fmt: skip
    data = ["--morphology", str(sim / "morphology.h5ad"), "--expression",
            str(sim / "expression.h5ad"), "--control", "DMSO", "--split", "replicate",
            "--calib", "3", "--test", "4", "--ae-steps", str(args.steps),
            "--max-steps", str(args.steps)]  # fmt: skip
    modes = ["backed"] + ([] if args.no_in_memory else ["in-memory"])
    for mode in modes:
        rows[f"train --{mode}"] = timed(
            [*PHENOSEQ, "train", *data, f"--{mode}", "--out", str(args.out / f"model_{mode}")],
            args.out / f"train_{mode}.log",
        )
    model, heldout = args.out / "model_backed", args.out / "heldout_morphology.h5ad"
    import anndata as ad

    morph = ad.read_h5ad(sim / "morphology.h5ad")
    morph[morph.obs["Replicate"].astype(str) == "4"].copy().write_h5ad(heldout)
    del morph
    rows["generate (streamed)"] = timed(
        [*PHENOSEQ, "generate", "--model", str(model), "--morphology",
         str(heldout), "--out", str(args.out / "generated.h5ad"),
         "--n-cells", str(args.gen_cells)], args.out / "generate.log",
    )  # fmt: skip
    if not args.no_in_memory:
        rows["generate (in memory, API)"] = timed(
            [str(PY), "-c", IN_MEMORY_GENERATE, str(heldout), str(model),
             str(args.out / "generated_mem.h5ad"), str(args.gen_cells)],
            args.out / "generate_mem.log",
        )  # fmt: skip
    expr = ad.read_h5ad(sim / "expression.h5ad", backed="r")
    shape = {"cells": expr.n_obs, "genes": expr.n_vars}
    expr.file.close()
    print(f"{shape['cells']:,} sequenced cells x {shape['genes']:,} genes; "
          f"{args.steps} + {args.steps} training steps")  # fmt: skip
    print(f"{'step':<28}{'peak RSS GiB':>14}{'seconds':>10}")
    for name, r in rows.items():
        print(f"{name:<28}{r['peak_gib']:>14.2f}{r['seconds']:>10.0f}")
    if "train --in-memory" in rows:
        ratio = rows["train --in-memory"]["peak_gib"] / rows["train --backed"]["peak_gib"]
        print(f"in-memory / backed training peak: {ratio:.2f}x")
    (args.out / "memory.json").write_text(json.dumps(shape | {"steps": args.steps,
                                                              "rows": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
