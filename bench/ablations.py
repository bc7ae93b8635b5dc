"""Generation-time ablations of one trained model on its held-out replicate: guidance, sampler
steps and the condition set size N, each scored with ``phenoseq evaluate``.

    .venv/bin/python bench/ablations.py --run bench/out/quality/seed0 --out bench/out/ablations

``--run`` is a demo output folder (model/, heldout_*.h5ad). One line per setting in
``table.md``: energy distance (seen / unseen), r delta (seen), identification of generated cells,
imaging + generated, gap closure, and the sampling time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import anndata as ad

from phenoseq.evaluate.run import evaluate
from phenoseq.model import PhenoSeqModel

SETTINGS = (
    [("guidance", g) for g in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)]
    + [("n_steps", s) for s in (5, 10, 20, 50)]
    + [("set_size", n) for n in (1, 4, 16, 64)]
)
DEFAULT = {"guidance": 1.0, "n_steps": 20, "set_size": None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench/out/ablations"))
    ap.add_argument("--n-cells", type=int, default=100)
    args = ap.parse_args()
    model = PhenoSeqModel.load(args.run / "model")
    morph = ad.read_h5ad(args.run / "heldout_morphology.h5ad")
    expr = ad.read_h5ad(args.run / "heldout_expression.h5ad")
    rows = []
    for name, v in SETTINGS:
        kw = DEFAULT | {name: v}
        t0 = time.monotonic()
        gen = model.generate(morph, n_cells=args.n_cells, n_steps=kw["n_steps"],
                             guidance=kw["guidance"], seed=0, progress=False,
                             set_size=kw["set_size"])  # fmt: skip
        seconds = time.monotonic() - t0
        m = evaluate(model, gen, expr, morph, seed=0, progress=False).metrics
        ti = m["treatment_identification"]
        row = {
            "setting": f"{name} = {v}", "ed_seen": m["model"]["energy_distance"]["seen"]["value"],
            "ed_unseen": m["model"]["energy_distance"]["unseen"]["value"],
            "r_delta_seen": m["model"]["pearson_delta"]["seen"]["value"],
            "ba_generated": ti["balanced_accuracy"]["generated"],
            "ba_imaging_generated": ti["balanced_accuracy"]["imaging_generated"],
            "gap_closure": ti["gap_closure"], "sample_seconds": seconds,
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = ("setting", "ED seen", "ED unseen", "r delta seen", "BA generated",
            "BA imaging + gen", "gap closure", "sampling s")  # fmt: skip
    head = "| " + " | ".join(cols) + " |"
    lines = [head, "|---|" + "---:|" * 7]
    for r in rows:
        lines.append(f"| {r['setting']} | {r['ed_seen']:.3f} | {r['ed_unseen']:.3f} | "
                     f"{r['r_delta_seen']:.3f} | {r['ba_generated']:.3f} | "
                     f"{r['ba_imaging_generated']:.3f} | {r['gap_closure']:.3f} | "
                     f"{r['sample_seconds']:.1f} |")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
