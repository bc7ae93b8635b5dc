"""The README's "Your own data" chain, run as written on files of that shape: a pycytominer-style
per-cell table (Metadata_broad_sample, Metadata_Plate, Cells_/Nuclei_ features), an scRNA-seq
.h5ad naming the same things perturbation / replicate, and a plate that was imaged only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

README = Path(__file__).resolve().parents[1] / "README.md"
COMPOUNDS = ["DMSO", "BRD-A", "BRD-B", "BRD-C", "BRD-D", "BRD-E"]
FAST = """[train]
max_steps = 4
ae_steps = 4
batch_size = 16
set_size = 4
warmup_steps = 1
[model]
n_latent = 4
ae_hidden = 16
ae_layers = 1
d_model = 16
cond_layers = 1
n_tokens = 2
width = 32
depth = 2
cond_heads = 2
"""


def readme_commands() -> str:
    """The first bash block under the README's "## Your own data" heading."""
    text = README.read_text().split("## Your own data", 1)[1]
    return re.search(r"```bash\n(.*?)```", text, re.S).group(1)


def _cells(rng, plates: list[str], n: int = 10) -> pd.DataFrame:
    rows = []
    for p in plates:
        for k, c in enumerate(COMPOUNDS):
            shift = 0.0 if c == "DMSO" else 0.5 * k
            for i in range(n):
                rows.append({"Metadata_Plate": p, "Metadata_Well": f"B{k + 2:02d}",
                             "Metadata_Site": 1, "Metadata_ObjectNumber": i + 1,
                             "Metadata_broad_sample": c,
                             "Cells_AreaShape_Area": 500 + 40 * shift + rng.normal(0, 20),
                             "Cells_Intensity_MeanIntensity_DNA": 0.3 + 0.05 * shift
                             + rng.normal(0, 0.02),
                             "Nuclei_AreaShape_Eccentricity": 0.5 + 0.03 * shift
                             + rng.normal(0, 0.05)})  # fmt: skip
    return pd.DataFrame(rows)


def _rna(rng, plates: list[str], n: int = 12) -> ad.AnnData:
    obs = pd.DataFrame([(c, p) for p in plates for c in COMPOUNDS for _ in range(n)],
                       columns=["perturbation", "replicate"])  # fmt: skip
    k = obs["perturbation"].map({c: i for i, c in enumerate(COMPOUNDS)}).to_numpy()
    rate = 3.0 + np.outer(k, np.linspace(0, 1, 20))
    x = sp.csr_matrix(rng.poisson(rate).astype(np.float32) + 1)
    var = pd.DataFrame({"gene_symbols": [f"GENE{j}" for j in range(20)]},
                       index=[f"ENSG{j:05d}" for j in range(20)])  # fmt: skip
    return ad.AnnData(x, obs=obs.set_axis([f"c{i}" for i in range(len(obs))]), var=var)


def test_the_readme_chain_on_pycytominer_shaped_files(tmp_path):
    rng = np.random.default_rng(0)
    _cells(rng, ["P1", "P2", "P3", "P4"]).to_csv(tmp_path / "cells.csv.gz", index=False)
    _cells(rng, ["P5"]).to_csv(tmp_path / "unsequenced.csv.gz", index=False)
    _rna(rng, ["P1", "P2", "P3", "P4"]).write_h5ad(tmp_path / "rna.h5ad")
    (tmp_path / "fast.toml").write_text(FAST)
    # exactly the README's commands; only training is shortened (tiny networks, a few steps)
    script = readme_commands().replace("--out model/", "--out model/ --config fast.toml")
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                        "HF_HUB_OFFLINE": "1"}  # fmt: skip
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = " ".join(run.stdout.split())
    assert "shared groups" in out and "model written to model" in out, out
    pred = ad.read_h5ad(tmp_path / "predicted.h5ad")
    assert set(pred.obs["Metadata_Plate"]) == {"P5"} and "counts" in pred.layers
    assert pred.var["gene_symbols"].tolist()[:2] == ["GENE0", "GENE1"]
    summary = ad.read_h5ad(tmp_path / "summary.h5ad")
    assert summary.n_obs == len(COMPOUNDS) and "confidence" in summary.obs
    picks = pd.read_csv(tmp_path / "sequence_next.tsv", sep="\t")
    # the control (DMSO) is never proposed for sequencing: it is sequenced on every plate
    assert sorted(picks["Metadata_broad_sample"]) == COMPOUNDS[1:]
    assert picks["rank"].tolist()[0] == 1
    html = (tmp_path / "report.html").read_text()
    assert "GENE" in html and "confidence" in html
