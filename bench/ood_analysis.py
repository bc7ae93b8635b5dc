"""Which unseen-compound wells look seen, and are their errors small? Per unseen-compound group
of a test replicate: its confidence, the share of seen groups more confident, its pseudo-bulk
error (mean absolute over genes) and the share of seen groups with a smaller error.

    .venv/bin/python bench/ood_analysis.py bench/out/q48/seed0 bench/out/q48/seed1 \
        bench/out/q48/seed2 [--replicate 4]

Each run is a ``bench/quality.py`` seed folder with the demo's ``prediction_summary.h5ad``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import numpy as np

from phenoseq.model import PhenoSeqModel, real_pseudobulk


def rows(run: Path, replicate: str) -> list[tuple]:
    model = PhenoSeqModel.load(run / "model")
    s = ad.read_h5ad(run / "prediction_summary.h5ad")
    s = s[s.obs["Replicate"].astype(str) == replicate]
    expr = ad.read_h5ad(run / "heldout_expression.h5ad")
    expr = expr[expr.obs["Replicate"].astype(str) == replicate].copy()
    real = real_pseudobulk(model, expr).reindex(s.obs_names)
    err = np.abs(s.layers["mean"] - real.to_numpy()).mean(axis=1)
    seen = s.obs["seen_treatment"].astype(bool).to_numpy()
    conf = s.obs["confidence"].to_numpy()
    return [(run.name, s.obs_names[i], conf[i], (conf[seen] > conf[i]).mean(), err[i],
             (err[seen] < err[i]).mean(), np.median(err[seen]))
            for i in np.flatnonzero(~seen)]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--replicate", default="4")
    args = ap.parse_args()
    print("| run | group | confidence | seen more confident | error | seen with smaller error "
          "| median seen error |\n|---|---|---:|---:|---:|---:|---:|")  # fmt: skip
    for run in args.runs:
        for r in rows(run, args.replicate):
            print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.3f} | {r[5]:.2f} | "
                  f"{r[6]:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
