"""Calibrated uncertainty on the simulator: coverage, interval width and OOD AUROC per seed.

    .venv/bin/python bench/uncertainty.py --runs bench/out/quality/seed0 bench/out/quality/seed1 \\
        bench/out/quality/seed2 --out bench/out/uncertainty

Each run is a ``bench/quality.py`` seed folder (a demo: model trained on replicates 1-2,
replicate 3 = calibration, 4 = test). Calibrates on replicate 3 (``calibrate_model``: the
model's own calib groups), summarises the test replicate and scores the intervals against the
real test pseudo-bulks (and deltas vs the same replicate's control), separately for seen and
unseen treatments; OOD AUROC = unseen vs seen test groups by ``ood_score``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from phenoseq.evaluate.uncertainty import auroc, coverage
from phenoseq.model import PhenoSeqModel, real_pseudobulk
from phenoseq.uncertainty import (
    calibrate_model,
    novel_groups,
    summarize,
)


def one(run: Path) -> dict:
    cal = calibrate_model(run / "model", progress=False)
    model = PhenoSeqModel.load(run / "model")
    morph = ad.read_h5ad(run / "heldout_morphology.h5ad")
    real = real_pseudobulk(model, ad.read_h5ad(run / "heldout_expression.h5ad"))
    s = summarize(model, morph, cal, progress=False)
    novel = set(novel_groups(model, list(s.obs_names)))
    out: dict = {"q_bulk": cal.q_bulk, "q_novel": cal.q_novel}
    ctrl = s.obs["control_group"]
    for name, groups in (("seen", [g for g in s.obs_names if g not in novel]),
                         ("unseen", [g for g in s.obs_names if g in novel])):  # fmt: skip
        out[f"bulk/{name}"] = coverage(s[groups], real)
        have = [g for g in groups if ctrl[g] and ctrl[g] != g and ctrl[g] in real.index]
        delta = pd.DataFrame(real.loc[have].to_numpy() - real.loc[ctrl[have]].to_numpy(),
                             index=have, columns=real.columns)  # fmt: skip
        out[f"delta/{name}"] = coverage(s[have], delta, prefix="delta_")
    obs = s.obs
    out["ood_auroc"] = auroc(
        obs.loc[list(novel), "ood_score"],
        obs.loc[[g for g in obs.index if g not in novel], "ood_score"],
    )
    out["flagged"] = {"seen": int(obs.loc[[g for g in obs.index if g not in novel],
                                          "ood_flag"].sum()),
                      "unseen": int(obs.loc[list(novel), "ood_flag"].sum())}  # fmt: skip
    return out


LEVELS = ("0.5", "0.8", "0.9", "0.95")


def reliability_plot(rows: list[dict], path: Path) -> None:
    """Nominal vs empirical coverage: one panel each for pseudo-bulk and delta, per seed + mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nominal = np.array([float(v) for v in LEVELS])
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, target in zip(axes, ("bulk", "delta"), strict=True):
        ax.plot([0.4, 1], [0.4, 1], color="grey", lw=1, ls="--", label="nominal")
        ax.fill_between([0.4, 1], [0.35, 0.95], [0.45, 1.05], color="grey", alpha=0.12,
                        label="±5 points")  # fmt: skip
        for kind, colour in (("seen", "tab:blue"), ("unseen", "tab:orange")):
            cov = np.array([[r[f"{target}/{kind}"][lv]["coverage"] for lv in LEVELS]
                            for r in rows])  # fmt: skip
            for c in cov:
                ax.plot(nominal, c, color=colour, alpha=0.3, lw=1, marker=".")
            ax.plot(nominal, cov.mean(axis=0), color=colour, lw=2, marker="o",
                    label=f"{kind} treatments (mean of {len(rows)} seeds)")  # fmt: skip
        ax.set_title({"bulk": "pseudo-bulk", "delta": "delta vs control"}[target])
        ax.set_xlabel("nominal coverage")
        ax.set_xlim(0.4, 1.0)
        ax.set_ylim(0.4, 1.02)
    axes[0].set_ylabel("empirical coverage (test replicate)")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Conformal intervals calibrated on replicate 3, scored on replicate 4")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, nargs="*", default=[])
    ap.add_argument("--out", type=Path, default=Path("bench/out/uncertainty"))
    ap.add_argument("--figure", type=Path, default=None, help="Reliability plot PNG to write.")
    ap.add_argument("--rows", type=Path, default=None, help="Re-plot a previous rows.json.")
    args = ap.parse_args()
    rows = json.loads(args.rows.read_text()) if args.rows else []
    for run in args.runs:
        rows.append(one(run))
        print(run, json.dumps(rows[-1]), flush=True)
    if not rows:
        ap.error("pass --runs or --rows")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    if args.figure is not None:
        reliability_plot(rows, args.figure)
    lines = ["| target | groups | " + " | ".join(f"{lv} coverage" for lv in
                                                  ("0.5", "0.8", "0.9", "0.95")) + " | width 0.9 |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key in ("bulk/seen", "bulk/unseen", "delta/seen", "delta/unseen"):
        cov = [[r[key][lv]["coverage"] for r in rows] for lv in ("0.5", "0.8", "0.9", "0.95")]
        w = [r[key]["0.9"]["mean_width"] for r in rows]
        cells = [f"{np.mean(c):.3f} ± {np.std(c, ddof=1) if len(c) > 1 else 0:.3f}" for c in cov]
        lines.append(f"| {key.split('/')[0]} | {key.split('/')[1]} | " + " | ".join(cells)
                     + f" | {np.mean(w):.2f} |")  # fmt: skip
    a = [r["ood_auroc"] for r in rows]
    lines.append(
        f"\nOOD AUROC (unseen vs seen test groups): {np.mean(a):.3f} ± "
        f"{np.std(a, ddof=1) if len(a) > 1 else 0:.3f} (per run {np.round(a, 3).tolist()})"
    )
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
