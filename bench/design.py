"""Design ablations: the model's parts removed one at a time, each trained from scratch on the
same simulated data and scored on the same held-out replicate (4) and round (5).

    .venv/bin/python bench/design.py --data bench/out/q48/seed0 --out bench/out/design

``--data`` is a ``bench/quality.py --rounds`` seed folder (its ``simulated/`` data and
``heldout_*.h5ad``). Variants: the default model (well condition, mixture mean head, residual
diffusion); the mean head's posterior mean only, kernel ridge only, no mean head; direct (not
residual) generation; a linear kernel in the mean head (the RBF term made flat: kernel ridge
becomes ridge on the whitened well means); the set-of-cells condition of the first design.
``table.md`` holds one line per variant and test set: energy distance and r delta (seen /
unseen), identification from generated cells, gap closure and the training time, beside the
train-mean, group-posterior lookup and nearest-group baselines of the same evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import anndata as ad

from phenoseq.config import InputConfig, MeanHeadConfig, ModelConfig, SplitConfig, TrainConfig
from phenoseq.evaluate.run import evaluate
from phenoseq.model import train_model
from phenoseq.report.labels import fmt, value

VARIANTS = {
    "default (mixture head, residual)": ModelConfig(),
    "mean head: posterior mean only": ModelConfig(mean_head=MeanHeadConfig(kind="mean")),
    "mean head: kernel ridge only": ModelConfig(mean_head=MeanHeadConfig(kind="krr")),
    "no mean head (diffusion alone)": ModelConfig(mean_head=MeanHeadConfig(kind="none")),
    "kernel: linear (RBF length-scale x 1000)": ModelConfig(
        mean_head=MeanHeadConfig(length_scales=(1000.0,))
    ),
    "direct, not residual": ModelConfig(residual=False),
    "set-of-cells condition (first design)": ModelConfig(condition="set"),
}
TEST_SETS = {"4": "held-out replicate", "5": "held-out round"}
BASELINES = ("train_mean", "posterior_lookup", "nearest_group", "ridge")


def run_variant(name: str, config: ModelConfig, args) -> list[dict]:
    folder = args.out / "".join(c if c.isalnum() else "_" for c in name.split(" (")[0])
    sim = args.data / "simulated"
    split = SplitConfig("replicate", calib=("3",), test=("4", "5"))
    inputs = InputConfig(sim / "morphology.h5ad", sim / "expression.h5ad", control="DMSO",
                         split=split)  # fmt: skip
    reuse = args.reuse_default and config == ModelConfig()
    if not reuse:
        t0 = time.monotonic()
        model = train_model(inputs, folder / "model", config, TrainConfig(seed=args.seed),
                            progress=False)  # fmt: skip
    seconds = float("nan") if reuse else time.monotonic() - t0
    rows = []
    for rep in args.tests:
        test_set = TEST_SETS[rep]
        if reuse:  # the quality.py run of the same data, split, defaults and seed
            m = json.loads((args.data / f"metrics_rep{rep}.json").read_text())
        else:
            pick = lambda a: a[a.obs["Replicate"].astype(str) == rep].copy()  # noqa: E731,B023
            morph = pick(ad.read_h5ad(args.data / "heldout_morphology.h5ad"))
            expr = pick(ad.read_h5ad(args.data / "heldout_expression.h5ad"))
            gen = model.generate(morph, n_cells=100, seed=args.seed, progress=False)
            m = evaluate(model, gen, expr, morph, seed=args.seed, progress=False).metrics
        ti = m["treatment_identification"]
        row = {"variant": name, "test": test_set, "train_seconds": seconds,
               "ba_generated": ti["balanced_accuracy"]["generated"],
               "ba_imaging": ti["balanced_accuracy"]["imaging"],
               "gap_closure": ti["gap_closure"]}  # fmt: skip
        for method in ("model", *BASELINES):
            for metric in ("energy_distance", "pearson_delta"):
                for subset in ("seen", "unseen"):
                    row[f"{method}/{metric}/{subset}"] = value(m, method, metric, subset)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def seconds(v: float) -> str:
    return "(quality.py run)" if v != v else f"{v:.0f}"


def table(rows: list[dict]) -> str:
    f = fmt
    lines = []
    for test_set in TEST_SETS.values():
        lines += [f"\n**{test_set}**\n",
                  "| variant | ED seen | ED unseen | r delta seen | r delta unseen | "
                  "BA generated | gap closure | train s |", "|---|" + "---:|" * 7]  # fmt: skip
        sub = [r for r in rows if r["test"] == test_set]
        for r in sub:
            lines.append(
                f"| {r['variant']} | {f(r['model/energy_distance/seen'])} | "
                f"{f(r['model/energy_distance/unseen'])} | {f(r['model/pearson_delta/seen'])} | "
                f"{f(r['model/pearson_delta/unseen'])} | {f(r['ba_generated'])} | "
                f"{f(r['gap_closure'])} | {seconds(r['train_seconds'])} |"
            )
        if sub:
            r = sub[0]
            for b in BASELINES:
                lines.append(
                    f"| *{b}* | {f(r[f'{b}/energy_distance/seen'])} | "
                    f"{f(r[f'{b}/energy_distance/unseen'])} | {f(r[f'{b}/pearson_delta/seen'])} | "
                    f"{f(r[f'{b}/pearson_delta/unseen'])} | | | |"
                )
            lines.append(f"| *imaging features (BA)* | | | | | {f(r['ba_imaging'])} | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench/out/design"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="*", help="Substrings of the variants to run (all).")
    ap.add_argument(
        "--tests",
        nargs="+",
        default=list(TEST_SETS),
        choices=list(TEST_SETS),
        help="Test replicates to score (4: held-out replicate, 5: held-out round).",
    )
    ap.add_argument("--reuse-default", action="store_true",
                    help="Take the default row from --data's metrics_rep*.json (quality.py "
                         "trained the same model) instead of training it again.")  # fmt: skip
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.done = []
    for name, config in VARIANTS.items():
        if args.variants and not any(v in name for v in args.variants):
            continue
        args.done += run_variant(name, config, args)
        (args.out / "rows.json").write_text(json.dumps(args.done, indent=1))
        (args.out / "table.md").write_text(table(args.done))
    print(table(args.done))


if __name__ == "__main__":
    main()
