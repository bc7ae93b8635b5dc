"""Featurize throughput: fields per second per core, default features vs cp-measure.

    .venv/bin/python bench/featurize_throughput.py --repeats 3

Runs :func:`phenoseq.imaging.featurize.featurize_field` in-process on one core (BLAS/OpenMP
threads pinned to 1) on the real fields in ../shared/data: the 1080 x 1080 pediatric-atlas
field and the two 520 x 696 U2OS fields. Reading, segmentation and measurement are timed
separately; the ratio fast / cp-measure is measured in the same run.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

from phenoseq.imaging.fields import discover_fields, read_field  # noqa: E402
from phenoseq.imaging.measure import measure_cp, measure_fast  # noqa: E402
from phenoseq.imaging.segment import SegmentConfig, segment  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FIELDS = {
    "pediatric 1080x1080": ("pediatric-cancer-atlas-field",
                            "DNA=ch5,ER=ch2,RNA=ch6,AGP=ch3,Mito=ch4", 40),
    "bbbc022 520x696": ("bbbc022-u2os-field", r"DNA=w1.*\.png,ER=w2,RNA=w3,AGP=w4,Mito=w5", 40),
    "cdrp 520x696": ("cdrp-u2os-field-cloome",
                     r"DNA=Hoechst,ER=ERSyto\.,RNA=ERSytoBleed,AGP=Ph_golgi,Mito=Mito", 40),
}  # fmt: skip


def timed(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/out/featurize_throughput.json"))
    args = ap.parse_args()
    rows = []
    for name, (folder, cmap, diameter) in FIELDS.items():
        field = discover_fields(SHARED / folder, cmap)[0]
        t_read, image = timed(partial(read_field, field), args.repeats)
        cfg = SegmentConfig.for_nucleus_diameter(diameter)
        t_seg, (nuclei, cells, image) = timed(partial(segment, image, cfg), args.repeats)
        t_fast, fast = timed(partial(measure_fast, image, nuclei, cells), args.repeats)
        t_cp, cp = timed(partial(measure_cp, image, nuclei, cells), 1)
        row = {
            "field": name, "cells": len(fast), "read_s": t_read, "segment_s": t_seg,
            "fast_features": fast.shape[1] - 1, "fast_measure_s": t_fast,
            "cp_features": cp.shape[1] - 1, "cp_measure_s": t_cp,
            "fields_per_s_fast": 1 / (t_read + t_seg + t_fast),
            "fields_per_s_cp": 1 / (t_read + t_seg + t_cp),
        }  # fmt: skip
        row["ratio_fast_over_cp"] = row["fields_per_s_fast"] / row["fields_per_s_cp"]
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
              flush=True)  # fmt: skip
    print(
        "\n| field | cells | read s | segment s | fast: features, s | cp-measure: features, s |"
        " fields/s/core fast | fields/s/core cp-measure | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['field']} | {r['cells']} | {r['read_s']:.2f} | {r['segment_s']:.2f} | "
              f"{r['fast_features']}, {r['fast_measure_s']:.2f} | {r['cp_features']}, "
              f"{r['cp_measure_s']:.1f} | {r['fields_per_s_fast']:.2f} | "
              f"{r['fields_per_s_cp']:.3f} | {r['ratio_fast_over_cp']:.0f}x |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
