"""Sampling speed: `phenoseq generate` (whole command) vs the original PhenoSeq's DDIM-50.

    git -C <mirror of reednaidoo/PhenoSeq> archive HEAD models | tar -x -C /tmp/orig
    .venv/bin/python bench/sampling.py --original /tmp/orig --out bench/out/sampling

- **PhenoSeq** (this package): a model on 2,000 genes (simulator, `--n-genes 2000`, trained for
  a handful of steps: sampling time does not depend on the weights, only on the architecture,
  which is the default), then the *whole* `phenoseq generate` command with its defaults
  (DPM-Solver++ 20 steps, guidance 1, 100 cells per group) as a subprocess: start-up, model
  load, reading the morphology, sampling, NB decoding and writing the `.h5ad` all count.
- **Original** (its own code, random weights, its config defaults: 6 cross-attention blocks of
  width 1024, 8 heads, 16-cell context of 5,120 features, 512-d target, DDIM with 50 steps),
  sampling only (model construction excluded), batches of ``--batch`` cells. Its repository is
  read from ``--original`` (kept outside this repository); without it the benchmark says so and
  reports PhenoSeq alone.
Both on the same machine and threads in one run; the ratio is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import torch


def original_cells_per_second(folder: Path, n_cells: int, batch: int, steps: int) -> dict:
    sys.path.insert(0, str(folder))
    from models.denoiser import Img2RNADenoiser  # the original's own code
    from models.diffusion import GaussianDiffusion

    torch.manual_seed(0)
    denoiser = Img2RNADenoiser()  # its defaults = its config.yaml
    diffusion = GaussianDiffusion(denoiser, num_steps=1000, schedule="cosine").eval()
    n_params = sum(p.numel() for p in denoiser.parameters())
    done, seconds = 0, 0.0
    with torch.no_grad():
        while done < n_cells:
            b = min(batch, n_cells - done)
            context = torch.randn(b, 16, 5120)
            t0 = time.perf_counter()
            diffusion.sample_ddim(context, num_inference_steps=steps)
            seconds += time.perf_counter() - t0
            done += b
    return {"cells": done, "seconds": seconds, "cells_per_s": done / seconds,
            "parameters": n_params, "steps": steps}  # fmt: skip


def phenoseq_cells_per_second(work: Path, n_genes: int) -> dict:
    exe = str(Path(sys.executable).with_name("phenoseq"))
    sim, model = work / "sim", work / "model"
    if not (model / "config.json").exists():
        subprocess.run([exe, "simulate", "--out", str(sim), "--n-genes", str(n_genes),
                        "--features-only", "--quiet"], check=True)  # fmt: skip
        subprocess.run([exe, "train", "--morphology", str(sim / "morphology.h5ad"),
                        "--expression", str(sim / "expression.h5ad"), "--control", "DMSO",
                        "--split", "replicate", "--calib", "3", "--test", "4", "--out",
                        str(model), "--max-steps", "20", "--ae-steps", "20"],
                       check=True, capture_output=True)  # fmt: skip
    morph = ad.read_h5ad(sim / "morphology.h5ad")
    test = morph[morph.obs["Replicate"].astype(str) == "4"].copy()
    test.write_h5ad(work / "test_morphology.h5ad")
    out = work / "generated.h5ad"
    t0 = time.perf_counter()
    subprocess.run([exe, "generate", "--model", str(model), "--morphology",
                    str(work / "test_morphology.h5ad"), "--out", str(out)],
                   check=True, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    gen = ad.read_h5ad(out, backed="r")
    return {"cells": gen.n_obs, "genes": gen.n_vars, "seconds": seconds,
            "cells_per_s": gen.n_obs / seconds, "steps": 20, "sampler": "dpmpp_2m"}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", type=Path, default=None, help="Checkout of the original.")
    ap.add_argument("--out", type=Path, default=Path("bench/out/sampling"))
    ap.add_argument("--n-genes", type=int, default=2000)
    ap.add_argument("--original-cells", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    result["phenoseq"] = phenoseq_cells_per_second(args.out, args.n_genes)
    print("phenoseq generate:", json.dumps(result["phenoseq"]), flush=True)
    if args.original is not None and (args.original / "models" / "denoiser.py").exists():
        result["original"] = original_cells_per_second(args.original, args.original_cells,
                                                       args.batch, 50)  # fmt: skip
        print("original DDIM-50:", json.dumps(result["original"]), flush=True)
        result["ratio"] = result["phenoseq"]["cells_per_s"] / result["original"]["cells_per_s"]
        print(f"ratio: PhenoSeq generate is {result['ratio']:.0f}x the original's cells/s")
    else:
        print("original not given (--original DIR): PhenoSeq alone measured")
    (args.out / "sampling.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
