"""Calibrated uncertainty on the simulator: coverage and width (seen / unseen, pseudo-bulk /
delta), whether the confidence ranks the errors, OOD AUROC — per seed and test replicate.

    .venv/bin/python bench/uncertainty.py --runs bench/out/q48/seed0 bench/out/q48/seed1 \
        bench/out/q48/seed2 --out bench/out/uncertainty48 --figure docs/img/bench/reliability.png

Each run is a ``bench/quality.py`` seed folder (a demo: model trained on replicates 1-2,
replicate 3 = calibration, 4 = held-out replicate, 5 = held-out round when simulated). The model
is calibrated on replicate 3 (``calibrate_model``: its own calib groups), each test replicate is
summarised and scored with ``phenoseq.evaluate.uncertainty.score_summary``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import numpy as np

from phenoseq.evaluate.uncertainty import score_summary
from phenoseq.model import PhenoSeqModel
from phenoseq.uncertainty import calibrate_model, summarize
from phenoseq.uncertainty.calibration import Calibration


def one(run: Path, reuse: bool = False) -> dict[str, dict]:
    """Test replicate -> its uncertainty scores (``score_summary``'s dict). ``reuse``: take the
    demo's own calibration (``model/calibration.json``, replicate 3) and its per-well summary
    (``prediction_summary.h5ad``) instead of computing them again — the same functions with
    the same settings and seed; files of an older version are computed again."""
    saved = Calibration.load(run / "model") if reuse else None
    if saved is not None and saved.guarantee is None:  # written by an older calibrate
        saved = None
    cal = saved if saved is not None else calibrate_model(run / "model", progress=False)
    model = PhenoSeqModel.load(run / "model")
    morph = ad.read_h5ad(run / "heldout_morphology.h5ad")
    expr = ad.read_h5ad(run / "heldout_expression.h5ad")
    demo = run / "prediction_summary.h5ad"
    summary = ad.read_h5ad(demo) if saved is not None and demo.exists() else None
    if summary is not None and "uncertainty" not in summary.obs:  # an older summarize
        summary = None
    out = {}
    for rep in sorted(morph.obs["Replicate"].astype(str).unique()):
        m = morph[morph.obs["Replicate"].astype(str) == rep].copy()
        e = expr[expr.obs["Replicate"].astype(str) == rep].copy()
        if summary is not None:
            s = summary[summary.obs["Replicate"].astype(str) == rep].copy()
        else:
            s = summarize(model, m, cal, progress=False)
        out[rep] = score_summary(model, s, e) | {"guarantee": cal.guarantee}
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
            key = f"{'pseudobulk' if target == 'bulk' else target}/{kind}"
            cov = np.array([[r["coverage"][key][lv]["coverage"] for lv in LEVELS]
                            for r in rows if key in r["coverage"]])  # fmt: skip
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


def _cell(values: list[float]) -> str:
    v = np.asarray([x for x in values if x is not None], float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}" if len(v) else "–"


def table(rows: list[dict]) -> str:
    """Coverage per level, the width at 90% beside the train-mean baseline's, the rankers."""
    lines = ["| target | groups | " + " | ".join(f"{lv} coverage" for lv in LEVELS)
             + " | width 0.9 | train-mean width 0.9 |", "|---|---|" + "---:|" * 6]  # fmt: skip
    for key in ("pseudobulk/seen", "pseudobulk/unseen", "delta/seen", "delta/unseen"):
        have = [r["coverage"][key] for r in rows if key in r["coverage"]]
        if not have:
            continue
        cov = [_cell([c[lv]["coverage"] for c in have]) for lv in LEVELS]
        tm = _cell([r["width_vs_train_mean"]["0.9"]["train_mean_width"] for r in rows])
        lines.append(f"| {key.split('/')[0]} | {key.split('/')[1]} | " + " | ".join(cov)
                     + f" | {_cell([c['0.9']['mean_width'] for c in have])} | "
                     + (tm if key.startswith("pseudobulk") else "–") + " |")  # fmt: skip
    rank = rows[0].get("error_ranking", {}).get("auroc_top_quartile", {})
    lines += [
        "",
        "| ranking score | AUROC, top-quartile error | AURC (random, oracle) |",
        "|---|---:|---:|",
    ]
    for name in rank:
        rc = [r["error_ranking"]["risk_coverage"][name] for r in rows]
        auc = _cell([r["error_ranking"]["auroc_top_quartile"][name] for r in rows])
        lines.append(f"| {name} | {auc} | {_cell([x['aurc'] for x in rc])} "
                     f"({_cell([x['random_aurc'] for x in rc])}, "
                     f"{_cell([x['oracle_aurc'] for x in rc])}) |")  # fmt: skip
    lines.append(f"\nOOD AUROC (unseen vs seen test groups): by the OOD distance "
                 f"{_cell([r.get('ood_auroc') for r in rows])}; by the error scale "
                 f"{_cell([r.get('ood_auroc_uncertainty') for r in rows])}")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, nargs="*", default=[])
    ap.add_argument("--out", type=Path, default=Path("bench/out/uncertainty"))
    ap.add_argument("--figure", type=Path, default=None, help="Reliability plot PNG to write.")
    ap.add_argument("--reuse", action="store_true",
                    help="Use each run's own calibration and prediction_summary.h5ad (the demo "
                         "wrote them) instead of calibrating and summarising again.")  # fmt: skip
    args = ap.parse_args()
    by_rep: dict[str, list[dict]] = {}
    for run in args.runs:
        for rep, r in one(run, args.reuse).items():
            by_rep.setdefault(rep, []).append(r)
        print(run, "done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rows.json").write_text(json.dumps(by_rep, indent=1))
    text = "".join(f"\n## test replicate {rep}\n\n{table(rows)}" for rep, rows in by_rep.items())
    if args.figure is not None and "4" in by_rep:
        reliability_plot(by_rep["4"], args.figure)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
