"""Generation quality on the simulator over several seeds: the demo pipeline per seed, then the
model vs every baseline vs the split-half ceiling (mean ± sd), recognition, and the bars of the
generation-quality issue.

    .venv/bin/python bench/quality.py --seeds 0 1 2 --out bench/out/quality
    .venv/bin/python bench/quality.py --morph-cells 500 --out bench/out/quality500   # real wells
    .venv/bin/python bench/quality.py --rounds --out bench/out/quality_rounds  # + held-out round

Each seed simulates its own dataset, trains with the demo's settings, generates for the held-out
replicate (4) — and with ``--rounds`` for a replicate of another experiment round (5) — and
evaluates each test set separately (``phenoseq.evaluate``). ``summary.json`` and ``table.md``
land in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import numpy as np

from phenoseq.config import SampleConfig, TrainConfig
from phenoseq.demo import DemoConfig, run_demo
from phenoseq.evaluate.run import evaluate, write_evaluation
from phenoseq.evaluate.suite import BASELINES, INPUTS, METRICS
from phenoseq.model import PhenoSeqModel
from phenoseq.report.labels import LABELS, method_entry, value
from phenoseq.simulate import SimulatorConfig

METHODS = ("model", *BASELINES, "split_half")
TEST_SETS = {"4": "held-out replicate", "5": "held-out round"}


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def recognised(folder: Path, replicate: str) -> tuple[list[str], float]:
    """Held-out groups of seen treatments whose well mean (in the mean head's space) is nearest
    to their own treatment's training centroid, and that fraction of them."""
    model = PhenoSeqModel.load(folder / "model")
    morph = ad.read_h5ad(folder / "heldout_morphology.h5ad")
    morph = morph[morph.obs["Replicate"].astype(str) == replicate].copy()
    head, reg = model.mean_head, model.registry
    cond = model.prepare(morph)
    labels = dict(zip(reg.group_names, reg.group_labels, strict=True))
    classes = [reg.group_labels[g[0]] for g in head.class_groups]
    seen = [g for g in cond.groups if labels.get(g) in classes]
    z = head.represent(np.vstack([cond.cells(g).mean(axis=0) for g in seen]))
    centroids = head.posterior.centroids
    nearest = ((z[:, None, :] - centroids[None]) ** 2).sum(2).argmin(1)
    hits = [g for g, j in zip(seen, nearest, strict=True) if classes[j] == labels[g]]
    return hits, len(hits) / max(len(seen), 1)


def per_seed(metrics: dict, hits: list[str], rate: float) -> dict:
    """The numbers a seed contributes: every method x metric x subset, identification, ratios."""
    out = {f"{m}/{k}/{s}": value(metrics, m, k, s) for m in METHODS for k in METRICS
           for s in ("seen", "unseen")}  # fmt: skip
    ti = metrics["treatment_identification"]
    for i in INPUTS:
        out[f"identification/{i}"] = _num(ti["balanced_accuracy"][i])
        out[f"unseen_retrieval/{i}"] = _num(ti["unseen_retrieval_map"][i])
    out["identification/gap_closure"] = _num(ti["gap_closure"])
    out["unseen_retrieval/gap_closure"] = _num(ti["unseen_gap_closure"])
    out["recognition/rate"] = rate
    for m in ("model", "lookup", "recognise_copy"):
        ed = method_entry(metrics, m).get("energy_distance", {}).get("per_group", {})
        out[f"recognised/{m}"] = float(np.nanmean([_num(ed.get(g)) for g in hits])) if hits else \
            float("nan")  # fmt: skip
    return out


BARS = {
    "recognised groups: ED <= 1.5 x lookup":
        lambda a: a["recognised/model"] <= 1.5 * a["recognised/lookup"],
    "seen ED <= 0.2 x train mean": lambda a: a["model/energy_distance/seen"]
        <= 0.2 * a["train_mean/energy_distance/seen"],
    "seen ED < group-posterior lookup": lambda a: a["model/energy_distance/seen"]
        < a["posterior_lookup/energy_distance/seen"],
    "generated BA >= imaging + 0.03": lambda a: a["identification/generated"]
        >= a["identification/imaging"] + 0.03,
    "gap closure >= 0.5": lambda a: a["identification/gap_closure"] >= 0.5,
    "unseen ED <= 0.6 x nearest group": lambda a: a["model/energy_distance/unseen"]
        <= 0.6 * a["nearest_group/energy_distance/unseen"],
    "unseen ED < unconditional": lambda a: a["model/energy_distance/unseen"]
        < a["unconditional/energy_distance/unseen"],
    "unseen ED < ridge": lambda a: a["model/energy_distance/unseen"]
        < a["ridge/energy_distance/unseen"],
    "unseen r delta >= ridge": lambda a: a["model/pearson_delta/unseen"]
        >= a["ridge/pearson_delta/unseen"],
    "seen ED < mean head + copied residuals": lambda a: a["model/energy_distance/seen"]
        < a["mean_head_copy/energy_distance/seen"],
    "unseen ED < mean head + copied residuals": lambda a: a["model/energy_distance/unseen"]
        < a["mean_head_copy/energy_distance/unseen"],
}  # fmt: skip


def table(mean: dict, sd: dict, n: int) -> str:
    cell = lambda k: f"{mean[k]:.3f} ± {sd[k]:.3f}" if np.isfinite(mean[k]) else "–"  # noqa: E731
    lines = []
    for subset in ("seen", "unseen"):
        lines += [
            f"\n**{subset} treatments** (mean ± sd over {n} seeds)\n",
            "| method | " + " | ".join(METRICS) + " |",
            "|---|" + "---:|" * len(METRICS),
        ]
        lines += [f"| {LABELS[m]} | " + " | ".join(cell(f"{m}/{k}/{subset}") for k in METRICS)
                  + " |" for m in METHODS]  # fmt: skip
    lines += [
        "\n**treatment identification** (seen: balanced accuracy; unseen: retrieval mAP)\n",
        "| input | seen | unseen |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {LABELS.get(i, i)} | {cell(f'identification/{i}')} | {cell(f'unseen_retrieval/{i}')} |"
        for i in (*INPUTS, "gap_closure")
    ]
    lines += [f"\nrecognition (held-out seen groups nearest their own treatment): "
              f"{cell('recognition/rate')}; energy distance on those groups: model "
              f"{cell('recognised/model')}, lookup {cell('recognised/lookup')}, "
              f"recognise-and-copy {cell('recognised/recognise_copy')}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def run_seed(args, seed: int) -> dict[str, dict]:
    """Train and evaluate one seed; returns test set -> its per-seed numbers."""
    folder = args.out / f"seed{seed}"
    test = "4,5" if args.rounds else "4"
    sim = SimulatorConfig(
        features_only=args.features_only,
        n_morphology_cells=args.morph_cells,
        **({"rounds": (4, 1), "n_replicates": 5} if args.rounds else {}),
    )
    done = [folder / "metrics.json"] + [folder / f"metrics_rep{r}.json" for r in test.split(",")]
    if not (args.reuse and any(p.exists() for p in done)):
        tcfg = TrainConfig(seed=seed, max_steps=args.max_steps, ae_steps=args.ae_steps)
        run_demo(folder, DemoConfig(seed=seed, simulator=sim, train=tcfg, test=test,
                                    sample=SampleConfig(seed=seed)), progress=False)  # fmt: skip
    out = {}
    for rep in test.split(","):
        path = folder / (f"metrics_rep{rep}.json" if args.rounds else "metrics.json")
        if not path.exists():
            write_evaluation(_evaluate_replicate(folder, rep, seed), path)
        hits, rate = recognised(folder, rep)
        out[TEST_SETS[rep]] = per_seed(json.loads(path.read_text()), hits, rate)
    return out


def _evaluate_replicate(folder: Path, rep: str, seed: int):
    """The demo's model and generated cells evaluated on one held-out replicate."""
    pick = lambda a: a[a.obs["Replicate"].astype(str) == rep].copy()  # noqa: E731
    gen = ad.read_h5ad(folder / "generated.h5ad")
    gen = gen[gen.obs["Replicate"].astype(str) == rep].copy() if "Replicate" in gen.obs else gen
    return evaluate(folder / "model", gen, pick(ad.read_h5ad(folder / "heldout_expression.h5ad")),
                    pick(ad.read_h5ad(folder / "heldout_morphology.h5ad")), seed=seed,
                    progress=False)  # fmt: skip


def summarize(rows: list[dict], seeds: list[int]) -> tuple[str, dict]:
    keys = rows[0].keys()
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    sd = {k: float(np.nanstd([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0
          for k in keys}  # fmt: skip
    bars = {name: bool(check(mean)) for name, check in BARS.items()}
    text = (
        table(mean, sd, len(rows))
        + "\n**bars (on the means)**\n\n"
        + "\n".join(f"- {'met' if ok else 'MISSED'}: {name}" for name, ok in bars.items())
        + "\n"
    )
    return text, {"seeds": seeds, "per_seed": rows, "mean": mean, "sd": sd, "bars": bars}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("bench/out/quality"))
    ap.add_argument("--max-steps", type=int, default=TrainConfig().max_steps)
    ap.add_argument("--ae-steps", type=int, default=TrainConfig().ae_steps)
    ap.add_argument(
        "--morph-cells",
        type=int,
        default=SimulatorConfig().n_morphology_cells,
        help="Imaged cells per well (real wells hold 1,000-3,000).",
    )
    ap.add_argument("--features-only", action="store_true", help="Surrogate features (fast).")
    ap.add_argument("--rounds", action="store_true", help="Also test on another round.")
    ap.add_argument("--reuse", action="store_true", help="Reuse finished seeds in --out.")
    args = ap.parse_args()
    per_set: dict[str, list[dict]] = {}
    for seed in args.seeds:
        for name, row in run_seed(args, seed).items():
            per_set.setdefault(name, []).append(row)
            print(f"seed {seed} {name}: seen ED model {row['model/energy_distance/seen']:.3f}, "
                  f"unseen {row['model/energy_distance/unseen']:.3f}; gap closure "
                  f"{row['identification/gap_closure']:.3f}", flush=True)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    doc, text = {}, ""
    for name, rows in per_set.items():
        t, doc[name] = summarize(rows, args.seeds)
        text += f"\n## {name}\n{t}"
    (args.out / "summary.json").write_text(json.dumps(doc, indent=1))
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
