"""Picture of rendered crops for a few treatments (docs/img/simulator_crops.png).

Usage: python bench/simulator_crops.py SIMULATED_DIR [OUT.png]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import zarr

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp())
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Cell Painting false colour: DNA blue, ER green, RNA cyan-ish, AGP red, Mito magenta
_COLOURS = np.array([[0, 0, 1], [0, 1, 0], [0, 0.6, 0.6], [1, 0, 0], [0.8, 0, 0.8]])


def composite(crop: np.ndarray) -> np.ndarray:
    """``"5 h w"`` uint8 crop to an RGB image ``"h w 3"`` in [0, 1]."""
    x = crop.astype(np.float32) / 255.0
    rgb = np.tensordot(x, _COLOURS, axes=(0, 0))
    return np.clip(rgb / max(np.percentile(rgb, 99.5), 1e-6), 0, 1)


def main(sim: Path, out: Path, n_treatments: int = 5, n_cells: int = 6) -> None:
    obs = ad.read_h5ad(sim / "morphology.h5ad", backed="r").obs
    crops = zarr.open(str(sim / "crops.zarr"), mode="r")
    crops = crops["images"]  # "n_cells 5 64 64" uint8; "labels" holds the masks
    others = [t for t in obs["Treatment"].unique() if t != "DMSO"]
    treatments = ["DMSO", *others[: n_treatments - 1]]
    fig, axes = plt.subplots(n_treatments, n_cells, figsize=(1.6 * n_cells, 1.7 * n_treatments))
    for i, t in enumerate(treatments):
        rows = np.flatnonzero((obs["Treatment"] == t).to_numpy())[:n_cells]
        for j, r in enumerate(rows):
            axes[i, j].imshow(composite(np.asarray(crops[int(r)])))
            axes[i, j].set_axis_off()
        axes[i, 0].set_title(t, fontsize=8, loc="left")
    fig.suptitle("Rendered 5-channel crops (DNA blue, ER green, RNA teal, AGP red, Mito magenta)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    sim = Path(sys.argv[1])
    main(sim, Path(sys.argv[2]) if len(sys.argv) > 2 else Path("docs/img/simulator_crops.png"))
