"""Continuous kind: treatment-level profiles, compounds held out by 5-fold CV; the mean of the
model's generated profiles vs RidgeCV and kernel ridge from the same features, by retrieval of
the true profile and by the median per-gene R².

One row per treatment on each side (the pseudo-bulk of the simulator's cells: mean morphology
features, mean log1p expression), ~150 treatments from 50 compounds x 3 doses. Each fold holds out
every dose of a fifth of the compounds (``--split treatment``), trains a continuous-kind model on
the rest, generates profiles for the held-out treatments from their morphology row and averages
them. A prediction is scored by the rank of the true held-out profile among all held-out profiles
by Pearson correlation: top-3 accuracy and mean rank (1 = best); and per gene, R² of the
predictions over all held-out treatments (median over genes) — for the model, RidgeCV and an
RBF kernel ridge whose length-scale and penalty are chosen by compound-grouped CV on the
training profiles.

    .venv/bin/python bench/continuous_cv.py --out bench/out/continuous_cv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.preprocessing import StandardScaler

from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig
from phenoseq.data.transforms import normalize_log1p
from phenoseq.io import write_h5ad
from phenoseq.model import train_model
from phenoseq.simulate import SimulatorConfig, simulate
from phenoseq.train import TrainConfig


def treatment_profiles(sim: Path, out: Path) -> tuple[Path, Path, pd.Series]:
    """Pseudo-bulk per treatment: morphology.h5ad and expression.h5ad, one row each."""
    m, e = ad.read_h5ad(sim / "morphology.h5ad"), ad.read_h5ad(sim / "expression.h5ad")
    lab_m, lab_e = m.obs["Treatment"].astype(str), e.obs["Treatment"].astype(str)
    mx = pd.DataFrame(np.asarray(m.X), columns=m.var_names).groupby(lab_m.to_numpy()).mean()
    ex = pd.DataFrame(normalize_log1p(e.X), columns=e.var_names).groupby(lab_e.to_numpy()).mean()
    names = mx.index.intersection(ex.index)
    names = names[names != "DMSO"]
    compound = pd.Series([n.split("_")[0] for n in names], index=names)
    obs = pd.DataFrame({"Sample_ID": names, "Treatment": names}, index=names)
    out.mkdir(parents=True, exist_ok=True)
    pm, pe = out / "morphology.h5ad", out / "expression.h5ad"
    write_h5ad(ad.AnnData(mx.loc[names].to_numpy(np.float32), obs=obs,
                          var=pd.DataFrame(index=mx.columns)), pm)  # fmt: skip
    write_h5ad(ad.AnnData(ex.loc[names].to_numpy(np.float32), obs=obs,
                          var=pd.DataFrame(index=ex.columns)), pe)  # fmt: skip
    return pm, pe, compound


def retrieval(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of each row's true profile among all true profiles, by Pearson r."""
    p = (pred - pred.mean(1, keepdims=True)) / pred.std(1, keepdims=True)
    t = (truth - truth.mean(1, keepdims=True)) / truth.std(1, keepdims=True)
    r = p @ t.T / pred.shape[1]
    return 1 + (r > np.diag(r)[:, None]).sum(axis=1)


def kernel_ridge(x: np.ndarray, y: np.ndarray, groups: np.ndarray):
    """RBF kernel ridge on standardised features; gamma (x 1 / (features x variance)) and alpha
    by grouped CV (whole compounds held out, as in the outer folds)."""
    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    base = 1.0 / xs.shape[1]
    grid = {"gamma": [base * f for f in (0.1, 0.3, 1.0, 3.0)], "alpha": [1e-3, 1e-2, 1e-1, 1.0]}
    cv = GroupKFold(n_splits=min(5, len(np.unique(groups))))
    search = GridSearchCV(KernelRidge(kernel="rbf"), grid, cv=cv, scoring="r2")
    search.fit(xs, y, groups=groups)
    return lambda new: search.best_estimator_.predict(scaler.transform(new))


def median_r2(pred: np.ndarray, truth: np.ndarray) -> float:
    """Median over genes of R² of the predictions over treatments."""
    sse = ((truth - pred) ** 2).sum(axis=0)
    sst = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.median(1 - sse / np.maximum(sst, 1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/continuous_cv"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--max-steps", type=int, default=1500)
    ap.add_argument("--ae-steps", type=int, default=800)
    args = ap.parse_args()
    cfg = SimulatorConfig(seed=args.seed, n_treatments=150, n_unseen_compounds=0,
                          n_replicates=3, features_only=True, n_expression_cells=60,
                          n_morphology_cells=48)  # fmt: skip
    sim = simulate(args.out / "simulated", cfg)
    pm, pe, compound = treatment_profiles(sim, args.out / "profiles")
    morph, expr = ad.read_h5ad(pm), ad.read_h5ad(pe)
    rng = np.random.default_rng(args.seed)
    compounds = rng.permutation(compound.unique())
    folds = np.array_split(compounds, args.folds)
    ranks = {"model": [], "ridge": [], "kernel_ridge": []}
    preds = {name: [] for name in ranks}
    truths = []
    for k, held in enumerate(folds):
        test = compound.index[compound.isin(held)].tolist()
        inputs = InputConfig(pm, pe, expression_kind="continuous",
                             split=SplitConfig("treatment", test=tuple(test)))  # fmt: skip
        tcfg = TrainConfig(seed=args.seed, max_steps=args.max_steps, ae_steps=args.ae_steps,
                           batch_size=64, set_size=1, targets_per_set=1)  # fmt: skip
        model = train_model(inputs, args.out / f"model{k}", train_config=tcfg, progress=False)
        held_m = morph[test].copy()
        gen = model.generate(held_m, n_cells=50, seed=args.seed, progress=False)
        g = gen.obs["phenoseq_group"].astype(str).to_numpy()
        pred = np.stack([np.asarray(gen.X)[g == t].mean(axis=0) for t in test])
        train = [t for t in compound.index if t not in set(test)]
        x_train, y_train = np.asarray(morph[train].X), np.asarray(expr[train].X)
        ridge = RidgeCV(alphas=10.0 ** np.arange(-2, 5)).fit(x_train, y_train)
        krr = kernel_ridge(x_train, y_train, compound[train].to_numpy())
        truth = np.asarray(expr[test].X)
        fold = {"model": pred, "ridge": ridge.predict(np.asarray(held_m.X)),
                "kernel_ridge": krr(np.asarray(held_m.X))}  # fmt: skip
        for name, p in fold.items():
            ranks[name] += retrieval(p, truth).tolist()
            preds[name].append(p)
        truths.append(truth)
        print(f"fold {k}: {len(test)} held-out treatments; top-3 "
              + ", ".join(f"{n} {np.mean(np.array(r[-len(test):]) <= 3):.2f}"
                          for n, r in ranks.items()), flush=True)  # fmt: skip
    truth = np.vstack(truths)
    summary = {name: {"top3": float(np.mean(np.array(r) <= 3)), "mean_rank": float(np.mean(r)),
                      "median_r2_per_gene": median_r2(np.vstack(preds[name]), truth),
                      "n": len(r)} for name, r in ranks.items()}  # fmt: skip
    summary["n_candidates_per_fold"] = [int(compound.isin(f).sum()) for f in folds]
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
