"""Picture of rendered crops for a few treatments (docs/img/simulator_crops.png).

Simulates a small default-parameter dataset (seed 0), then shows, for DMSO and a few treatments
of the test replicate, cells as a three-colour composite (DNA blue, AGP green, Mito red) and
the five channels of one cell, plus one whole field with its nucleus outlines.

Usage::

    MPLCONFIGDIR=$(mktemp -d) python bench/simulator_crops.py [--out docs/img/simulator_crops.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anndata as ad
import matplotlib
import numpy as np
import zarr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from phenoseq import _keys as K  # noqa: E402
from phenoseq.simulate import CHANNELS, SimulatorConfig, simulate  # noqa: E402

N_CELLS = 6


def composite(image: np.ndarray) -> np.ndarray:
    """``(5, S, S)`` uint8 crop -> ``(S, S, 3)`` RGB: Mito red, AGP green, DNA blue."""
    rgb = np.stack([image[4], image[3], image[0]], axis=-1).astype(np.float32) / 255.0
    return np.clip(rgb * 1.6, 0, 1)


def pick_rows(obs, treatments: list[str], replicate: str) -> dict[str, np.ndarray]:
    """First ``N_CELLS`` row numbers of each treatment in ``replicate``."""
    rep = (obs[K.REPLICATE].astype(str) == replicate).to_numpy()
    return {
        t: np.flatnonzero(rep & (obs[K.TREATMENT].astype(str) == t).to_numpy())[:N_CELLS]
        for t in treatments
    }


def draw(folder: Path, out: Path) -> None:
    morph = ad.read_h5ad(folder / "morphology.h5ad", backed="r")
    images = zarr.open_group(str(folder / "crops.zarr"), mode="r")["images"]
    fields = zarr.open_group(str(folder / "fields.zarr"), mode="r")
    labels = list(morph.obs[K.TREATMENT].cat.categories)
    shown = [labels[0]] + [t for t in labels[1:] if t.endswith("_10uM")][:4]
    rows = pick_rows(morph.obs, shown, "4")
    n_cols = N_CELLS + len(CHANNELS)
    fig = plt.figure(figsize=(19, 1.6 * len(shown) + 0.8))
    grid = fig.add_gridspec(len(shown), n_cols + len(shown), wspace=0.05, hspace=0.08)
    for i, t in enumerate(shown):
        for j in range(n_cols):
            ax = fig.add_subplot(grid[i, j])
            ax.set_xticks([])
            ax.set_yticks([])
            if j < N_CELLS:
                ax.imshow(composite(images[int(rows[t][j])]))
            else:
                c = j - N_CELLS
                ax.imshow(images[int(rows[t][0])][c], cmap="gray", vmin=0, vmax=255)
                if i == 0:
                    ax.set_title(CHANNELS[c], fontsize=9)
            if j == 0:
                ax.set_ylabel(t, rotation=0, ha="right", va="center", fontsize=9)
    field_ax = fig.add_subplot(grid[:, n_cols:])
    field_ax.imshow(composite(fields["images"][0]))
    field_ax.contour(fields["nuclei"][0] > 0, levels=[0.5], colors="white", linewidths=0.4)
    field_ax.set_title(f"whole field ({fields.attrs['fields'][0][K.TREATMENT]}), nuclei outlined",
                       fontsize=9)  # fmt: skip
    field_ax.axis("off")
    fig.suptitle("Simulated Cell Painting, test replicate: 6 cells per treatment "
                 "(DNA blue, AGP green, Mito red) and the 5 channels of the first")  # fmt: skip
    fig.subplots_adjust(left=0.08, right=0.99, top=0.9, bottom=0.02)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/simulator_crops.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = simulate(Path(tmp) / "sim", SimulatorConfig(seed=0))
        draw(folder, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
