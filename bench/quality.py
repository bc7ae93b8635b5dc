"""Generation quality on the simulator over several seeds: the demo pipeline per seed, then the
model vs every baseline vs the split-half ceiling as mean ± sd, and the quality bars of issue 6.

    .venv/bin/python bench/quality.py --seeds 0 1 2 --out bench/out/quality

Each seed simulates its own dataset, trains, generates for the held-out replicate and evaluates
(``phenoseq.demo.run_demo``); ``summary.json`` and ``table.md`` land in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from phenoseq.data.transforms import normalize_log1p
from phenoseq.demo import DemoConfig, run_demo
from phenoseq.evaluate.distances import energy_distance, subsample_to
from phenoseq.evaluate.space import fit_space
from phenoseq.evaluate.suite import BASELINES, INPUTS, METRICS
from phenoseq.model import PhenoSeqModel
from phenoseq.report.labels import LABELS, method_entry, value
from phenoseq.train import TrainConfig

METHODS = ("model", *BASELINES, "split_half")


def per_seed(metrics: dict) -> dict:
    """The numbers a seed contributes: every method x metric x subset, identification, bars."""
    out = {f"{m}/{k}/{s}": value(metrics, m, k, s) for m in METHODS for k in METRICS
           for s in ("seen", "unseen")}  # fmt: skip
    ti = metrics["treatment_identification"]
    for i in INPUTS:
        out[f"identification/{i}"] = _num(ti["balanced_accuracy"][i])
        out[f"unseen_retrieval/{i}"] = _num(ti["unseen_retrieval_map"][i])
    out["identification/gap_closure"] = _num(ti["gap_closure"])
    out["unseen_retrieval/gap_closure"] = _num(ti["unseen_gap_closure"])
    seen = [g for g, info in metrics["groups"].items() if info["seen"]]
    model_g = method_entry(metrics, "model")["energy_distance"]["per_group"]
    ratios = {}
    for base in ("lookup", "train_mean"):
        base_g = method_entry(metrics, base)["energy_distance"]["per_group"]
        ratios[base] = float(np.median([_num(model_g[g]) / _num(base_g[g]) for g in seen]))
    out["bars/seen_ed_over_lookup"] = (
        out["model/energy_distance/seen"] / out["lookup/energy_distance/seen"]
    )
    out["bars/seen_ed_over_train_mean"] = (
        out["model/energy_distance/seen"] / out["train_mean/energy_distance/seen"]
    )
    out["bars/median_group_ratio_lookup"] = ratios["lookup"]
    out["bars/median_group_ratio_train_mean"] = ratios["train_mean"]
    return out


def posterior_lookup(folder: Path, seed: int = 0) -> dict[str, float]:
    """How far morphology alone can identify a treatment: a context bound, not a baseline.

    A logistic regression on single training morphology cells gives each held-out group a
    posterior over training treatments (summed log-probabilities of its cells, tempered by
    sqrt(n)); its cells are drawn from the real training cells of treatments sampled from that
    posterior. Energy distance to the real held-out cells, as in the evaluation.
    """
    model = PhenoSeqModel.load(folder / "model")
    m = ad.read_h5ad(folder / "simulated/morphology.h5ad")
    e = ad.read_h5ad(folder / "simulated/expression.h5ad")
    x = model.normalize_features(m)
    rep_m, rep_e = m.obs["Replicate"].astype(str), e.obs["Replicate"].astype(str)
    tr_m, te_m = rep_m.isin(["1", "2"]).to_numpy(), (rep_m == "4").to_numpy()
    tr_e = rep_e.isin(["1", "2"]).to_numpy()
    lab_m, lab_e = (
        m.obs["Treatment"].astype(str).to_numpy(),
        e.obs["Treatment"].astype(str).to_numpy(),
    )
    grp_m, grp_e = (
        m.obs["Sample_ID"].astype(str).to_numpy(),
        e.obs["Sample_ID"].astype(str).to_numpy(),
    )
    scaler = StandardScaler().fit(x[tr_m])
    clf = LogisticRegression(max_iter=2000, C=0.1).fit(scaler.transform(x[tr_m]), lab_m[tr_m])
    logx = normalize_log1p(e.X)
    space = fit_space(logx[tr_e], seed=seed)
    pcs = space.transform(logx)
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {"seen": [], "unseen": []}
    for g in np.unique(grp_m[te_m]):
        rows = grp_m == g
        lp = clf.predict_log_proba(scaler.transform(x[rows])).sum(axis=0)
        post = np.exp((lp - lp.max()) / np.sqrt(rows.sum()))
        picks = rng.choice(clf.classes_, size=100, p=post / post.sum())
        cells = np.stack([pcs[rng.choice(np.flatnonzero(tr_e & (lab_e == c)))] for c in picks])
        real = pcs[grp_e == g]
        key = "seen" if lab_m[rows][0] in set(lab_m[tr_m]) else "unseen"
        out[key].append(energy_distance(subsample_to(cells, len(real), rng), real))
    return {k: float(np.mean(v)) for k, v in out.items()}


def _num(v) -> float:
    return float("nan") if v is None else float(v)


BARS = {
    "seen ED ≤ 1.25 × lookup": lambda a: a["bars/seen_ed_over_lookup"] <= 1.25,
    "seen ED ≤ 0.25 × train mean": lambda a: a["bars/seen_ed_over_train_mean"] <= 0.25,
    "generated > imaging (balanced accuracy)":
        lambda a: a["identification/generated"] > a["identification/imaging"],
    "gap closure ≥ 0.5": lambda a: a["identification/gap_closure"] >= 0.5,
    "unseen ED < nearest group": lambda a: a["model/energy_distance/unseen"]
        < a["nearest_group/energy_distance/unseen"],
    "unseen ED < ridge": lambda a: a["model/energy_distance/unseen"]
        < a["ridge/energy_distance/unseen"],
}  # fmt: skip


def table(mean: dict, sd: dict, n: int) -> str:
    lines = []
    for subset in ("seen", "unseen"):
        lines += [
            f"\n**{subset} treatments** (mean ± sd over {n} seeds)\n",
            "| method | " + " | ".join(METRICS) + " |",
            "|---|" + "---:|" * len(METRICS),
        ]
        for m in METHODS:
            cells = [
                f"{mean[f'{m}/{k}/{subset}']:.3f} ± {sd[f'{m}/{k}/{subset}']:.3f}"
                if np.isfinite(mean[f"{m}/{k}/{subset}"])
                else "–"
                for k in METRICS
            ]
            lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
    lines += [
        "\n**treatment identification** (seen: balanced accuracy; unseen: retrieval mAP)\n",
        "| input | seen | unseen |",
        "|---|---:|---:|",
    ]
    for i in (*INPUTS, "gap_closure"):
        lines.append(
            f"| {LABELS.get(i, i)} | {mean[f'identification/{i}']:.3f} ± "
            f"{sd[f'identification/{i}']:.3f} | {mean[f'unseen_retrieval/{i}']:.3f} ± "
            f"{sd[f'unseen_retrieval/{i}']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("bench/out/quality"))
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--ae-steps", type=int, default=1500)
    ap.add_argument("--set-size", type=int, default=16, help="Training condition set size N.")
    ap.add_argument("--reuse", action="store_true", help="Reuse finished seeds in --out.")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        folder = args.out / f"seed{seed}"
        if args.reuse and (folder / "metrics.json").exists():
            metrics = json.loads((folder / "metrics.json").read_text())
        else:
            tcfg = TrainConfig(
                seed=seed, max_steps=args.max_steps, ae_steps=args.ae_steps, set_size=args.set_size
            )
            run_demo(folder, DemoConfig(seed=seed, train=tcfg), progress=False)
            metrics = json.loads((folder / "metrics.json").read_text())
        rows.append(per_seed(metrics))
        bound = posterior_lookup(folder, seed)
        rows[-1] |= {f"posterior_lookup/energy_distance/{k}": v for k, v in bound.items()}
        print(f"seed {seed}: seen ED model {rows[-1]['model/energy_distance/seen']:.3f}, lookup "
              f"{rows[-1]['lookup/energy_distance/seen']:.3f}; gap closure "
              f"{rows[-1]['identification/gap_closure']:.3f}", flush=True)  # fmt: skip
    keys = rows[0].keys()
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    sd = {k: float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0 for k in keys}
    bars = {name: bool(check(mean)) for name, check in BARS.items()}
    text = (
        table(mean, sd, len(rows))
        + "\n**bars (on the means)**\n\n"
        + "\n".join(f"- {'met' if ok else 'MISSED'}: {name}" for name, ok in bars.items())
        + "\n"
    )
    text += (
        "\nmorphology-posterior lookup (context bound; ED seen / unseen): "
        f"{mean['posterior_lookup/energy_distance/seen']:.3f} ± "
        f"{sd['posterior_lookup/energy_distance/seen']:.3f} / "
        f"{mean['posterior_lookup/energy_distance/unseen']:.3f} ± "
        f"{sd['posterior_lookup/energy_distance/unseen']:.3f}\n"
    )
    text += (f"\nratios: seen ED / lookup {mean['bars/seen_ed_over_lookup']:.2f} "
             f"(median per group {mean['bars/median_group_ratio_lookup']:.2f}); seen ED / train "
             f"mean {mean['bars/seen_ed_over_train_mean']:.3f}\n")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(
        json.dumps(
            {"seeds": args.seeds, "per_seed": rows, "mean": mean, "sd": sd, "bars": bars}, indent=1
        )
    )
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
