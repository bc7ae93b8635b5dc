"""Compare two demo output folders, for a refactor that must not change behaviour: the model's
weights, the generated cells (X, log1p, latents, groups) and every number of the earlier
metrics.json (new metrics in the later one are ignored).

    git worktree add /tmp/before <old commit>; git worktree add /tmp/after <new commit>
    (cd /tmp/before && OMP_NUM_THREADS=1 PYTHONPATH=src python -c "...run_demo(...)")   # each
    .venv/bin/python bench/compare_runs.py before_output/ after_output/

Used for the architecture move (39dc3ce -> 7748f83): the demo pipeline at 300 autoencoder + 600
diffusion steps, one thread, seed 0 — identical weights, identical generated cells, 0 of 1,600
metric numbers different.
"""

import json
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file

a, b = Path(sys.argv[1]), Path(sys.argv[2])


def dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


ga, gb = ad.read_h5ad(a / "generated.h5ad"), ad.read_h5ad(b / "generated.h5ad")
for name, xa, xb in (
    ("X", ga.X, gb.X),
    ("log1p", ga.layers["log1p"], gb.layers["log1p"]),
    ("latent", ga.obsm["X_phenoseq"], gb.obsm["X_phenoseq"]),
):
    print(f"generated {name}: identical = {np.array_equal(dense(xa), dense(xb))}", dense(xa).shape)
print(
    "generated obs groups identical:",
    np.array_equal(ga.obs["phenoseq_group"].to_numpy(), gb.obs["phenoseq_group"].to_numpy()),
)
wa, wb = load_file(a / "model/weights.safetensors"), load_file(b / "model/weights.safetensors")
print(
    "weights identical:", wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
)
ma, mb = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
diffs, n = [], 0


def walk(x, y, path):
    global n
    if isinstance(x, dict):
        for k in x:
            if k in ("provenance", "plot_data"):
                continue
            if k not in y:
                diffs.append(f"missing {path}/{k}")
                continue
            walk(x[k], y[k], f"{path}/{k}")
    elif isinstance(x, float | int) and not isinstance(x, bool):
        n += 1
        if not (x == y or (np.isnan(x) and np.isnan(y))):
            diffs.append(f"{path}: {x} != {y}")
    elif isinstance(x, list):
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            walk(u, v, f"{path}[{i}]")


walk(ma, mb, "")
print(f"metrics: {n} numbers of the earlier version compared, {len(diffs)} differ")
for d in diffs[:20]:
    print("  ", d)
