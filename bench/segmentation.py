"""Segmentation accuracy on real images, and the overlay figure in docs/imaging.md.

    .venv/bin/python bench/segmentation.py --out bench/out/segmentation --figure docs/img/imaging

- Pediatric cancer atlas field (../shared/data/pediatric-cancer-atlas-field): nuclei count vs
  the objects of CellProfiler's shipped NucleiOutlines, object F1 at IoU 0.5 for nuclei and
  cells, and the nucleus / cell areas of the 5 cells of the shipped parquet (matched by the
  nucleus centre) against CellProfiler's.
- StarDist's real nuclei test image with its ground-truth mask (needs ``stardist``): F1 at IoU
  0.5 at the image's nucleus diameter (the untuned Otsu + watershed reference scores 0.54).
Writes ``segmentation.json`` and, with ``--figure``, ``pediatric_overlay.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from phenoseq.imaging.fields import CHANNELS, discover_fields, read_field
from phenoseq.imaging.measure import locations, measure_fast
from phenoseq.imaging.segment import (
    SegmentConfig,
    labels_from_outlines,
    object_f1,
    segment,
    segment_nuclei,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PEDIATRIC = SHARED / "pediatric-cancer-atlas-field"


def pediatric() -> tuple[dict, tuple]:
    image = read_field(discover_fields(PEDIATRIC, "DNA=ch5,ER=ch2,RNA=ch6,AGP=ch3,Mito=ch4")[0])
    nuclei, cells, image = segment(image)
    outlines = {k: tifffile.imread(PEDIATRIC / f"{k}Outlines_BR00143976_C03_3.tiff")
                for k in ("Nuclei", "Cells")}  # fmt: skip
    truth_n, truth_c = (labels_from_outlines(outlines[k]) for k in ("Nuclei", "Cells"))
    ours = measure_fast(image, nuclei, cells)
    xy = locations(nuclei, ours["ObjectNumber"].to_numpy()).to_numpy()
    cp = pd.read_parquet(PEDIATRIC / "BR00143976_shrunken.parquet")
    cells_5 = []
    for _, row in cp.iterrows():
        q = row[["Nuclei_Location_Center_X", "Nuclei_Location_Center_Y"]].to_numpy(float)
        k = int(np.argmin(((xy - q) ** 2).sum(axis=1)))
        cells_5.append({
            "x": float(q[0]), "y": float(q[1]), "match_distance_px": float(np.hypot(*(xy[k] - q))),
            **{f"{c.lower()}_area_{who}": float(v) for c in ("Nuclei", "Cells")
               for who, v in (("ours", ours[f"{c}_AreaShape_Area"].iloc[k]),
                              ("cellprofiler", row[f"{c}_AreaShape_Area"]))},
        })  # fmt: skip
    result = {
        "nuclei_ours": int(nuclei.max()), "nuclei_cellprofiler": int(truth_n.max()),
        "nuclei_count_ratio": nuclei.max() / truth_n.max(),
        "nuclei": object_f1(nuclei, truth_n), "cells": object_f1(cells, truth_c),
        "five_cells": cells_5,
    }  # fmt: skip
    return result, (image, nuclei, cells, truth_n)


def stardist_image() -> dict | None:
    try:
        from stardist.data import test_image_nuclei_2d
    except ImportError:
        return None
    img, mask = test_image_nuclei_2d(return_mask=True)
    x = img.astype(np.float32) / np.iinfo(img.dtype).max
    out = {}
    for d in (12, 16, 20, 24):
        cfg = SegmentConfig.for_nucleus_diameter(d, discard_border=False)
        out[f"diameter_{d}"] = object_f1(segment_nuclei(x, cfg), mask)
    return out


def overlay(path: Path, image, nuclei, cells, truth_n) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    def stretch(p):
        lo, hi = np.percentile(p, [1, 99.5])
        return np.clip((p - lo) / max(hi - lo, 1e-9), 0, 1)

    rgb = np.stack([stretch(image[CHANNELS.index(c)]) for c in ("Mito", "AGP", "DNA")], -1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.2))
    for ax, (title, lines) in zip(
        axes,
        [("PhenoSeq: nuclei (yellow), cells (white)",
          [(find_boundaries(cells), (1, 1, 1)), (find_boundaries(nuclei), (1, 1, 0))]),
         ("CellProfiler nuclei outlines (shipped, cyan)",
          [(find_boundaries(truth_n), (0, 1, 1))])],
        strict=True,
    ):  # fmt: skip
        img = rgb.copy()
        for mask, colour in lines:
            img[mask] = colour
        ax.imshow(img)
        ax.set_title(title, fontsize=11)
        ax.axis("off")
    fig.suptitle("Pediatric cancer atlas field BR00143976 C03 site 3 (Mito red, AGP green, DNA "
                 "blue)", fontsize=11)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/segmentation"))
    ap.add_argument("--figure", type=Path, default=None, help="Folder for the overlay PNG.")
    args = ap.parse_args()
    result, arrays = pediatric()
    result = {"pediatric": result, "stardist": stardist_image()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "segmentation.json").write_text(json.dumps(result, indent=1, default=float))
    if args.figure is not None:
        overlay(args.figure / "pediatric_overlay.png", *arrays)
    p = result["pediatric"]
    print(f"pediatric: {p['nuclei_ours']} nuclei vs {p['nuclei_cellprofiler']} CellProfiler "
          f"({p['nuclei_count_ratio'] - 1:+.1%}); F1@0.5 nuclei {p['nuclei']['f1']:.3f}, cells "
          f"{p['cells']['f1']:.3f}")  # fmt: skip
    for c in p["five_cells"]:
        print(
            f"  cell at ({c['x']:.0f}, {c['y']:.0f}): nucleus area "
            f"{c['nuclei_area_ours'] / c['nuclei_area_cellprofiler'] - 1:+.0%}, cell area "
            f"{c['cells_area_ours'] / c['cells_area_cellprofiler'] - 1:+.0%} vs CellProfiler"
        )
    if result["stardist"]:
        scores = [f"{k.split('_')[1]} px {v['f1']:.3f}" for k, v in result["stardist"].items()]
        print("stardist test image F1@0.5 by nucleus diameter: " + ", ".join(scores))


if __name__ == "__main__":
    main()
