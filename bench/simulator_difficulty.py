"""How hard is the simulated treatment-identification task? (docs/simulator.md, "Difficulty")

For each seed: simulate at the defaults, train a logistic regression (standardised inputs,
balanced accuracy) on the train replicates and test it on the test replicate, over the seen
treatments, with single-cell inputs:

- imaging: rendered-crop features of one cell;
- real RNA: one cell's counts, normalize_total 1e4 + log1p + 50 PCs fitted on train;
- imaging + real RNA: one morphology cell concatenated with a random RNA cell of the same
  sample (the ceiling of the PhenoSeq protocol).

Usage::

    python bench/simulator_difficulty.py [--seeds 0 1 2] [--set effect_size=10 ...]
    python bench/simulator_difficulty.py --set features_only=true   # the surrogate features
    python bench/simulator_difficulty.py --rounds 4,1   # held-out replicate and held-out round

It also prints, per modality, the measured size of the replicate effect relative to the
median treatment effect (distances between sample means in the analysis space: standardised
features; 50 PCs of log1p-normalised counts). With ``--rounds`` every score is given for the
held-out replicate of round 1 (role ``test``) and for the held-out round (role ``test_round``),
and the effect sizes for two replicates of one round and of two different rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from phenoseq import _keys as K
from phenoseq.evaluate import ExpressionSpace, fuse, normalize_log1p, treatment_identification
from phenoseq.simulate import SimulatorConfig, simulate

ROUND = "Round"
TESTS = {"test": "held-out replicate", "test_round": "held-out round"}


def _split(adata: ad.AnnData, role: str = "test") -> tuple[ad.AnnData, ad.AnnData]:
    info = adata.uns[K.UNS]
    roles = {str(k): str(v) for k, v in info["replicate_roles"].items()}
    seen = ~adata.obs[K.TREATMENT].isin(list(info["unseen_treatments"]))
    rep = adata.obs[K.REPLICATE].astype(str)
    train = adata[(rep.map(roles) == "train").to_numpy() & seen.to_numpy()]
    test = adata[(rep.map(roles) == role).to_numpy() & seen.to_numpy()]
    return train, test


def _labels(adata: ad.AnnData) -> np.ndarray:
    return adata.obs[K.TREATMENT].astype(str).to_numpy()


def batch_to_treatment(x: np.ndarray, obs: pd.DataFrame, control: str, pairs: str = "all") -> float:
    """Median distance between two replicates' means of the same treatment over the median
    distance between a treatment's mean and the control's in the same replicate (rows of ``x``
    are cells in an analysis space; both medians carry the same sampling noise). ``pairs``:
    ``"all"`` replicate pairs, those of one round (``"within"``) or of two rounds
    (``"across"``)."""
    key = obs[K.TREATMENT].astype(str) + "|" + obs[K.REPLICATE].astype(str)
    means = pd.DataFrame(x).groupby(key.to_numpy()).mean()
    tr = means.index.str.split("|").str[0]
    rep = means.index.str.split("|").str[1]
    round_of = dict(zip(obs[K.REPLICATE].astype(str), obs[ROUND].astype(str), strict=True)) \
        if ROUND in obs else {}  # fmt: skip
    rnd = np.array([round_of.get(r, "1") for r in rep])
    keep = {"all": lambda i, j: True, "within": lambda i, j: rnd[i] == rnd[j],
            "across": lambda i, j: rnd[i] != rnd[j]}[pairs]  # fmt: skip
    m = means.to_numpy()
    treat = [np.linalg.norm(m[i] - m[(tr == control) & (rep == rep[i])][0])
             for i in range(len(m)) if tr[i] != control]  # fmt: skip
    batch = [np.linalg.norm(m[i] - m[j]) for i in range(len(m)) for j in range(i + 1, len(m))
             if tr[i] == tr[j] and keep(i, j)]  # fmt: skip
    return float(np.median(batch) / np.median(treat))


def _scores(morph: ad.AnnData, expr: ad.AnnData, role: str, seed: int) -> dict[str, float]:
    """Balanced accuracies of the three inputs, trained on the train replicates, tested on the
    replicates of ``role``."""
    m_train, m_test = _split(morph, role)
    e_train, e_test = _split(expr, role)
    space = ExpressionSpace.fit(normalize_log1p(e_train.X), n_pcs=50, seed=seed)
    r_train = space.transform(normalize_log1p(e_train.X))
    r_test = space.transform(normalize_log1p(e_test.X))
    rng = np.random.default_rng(seed)
    sid = K.SAMPLE_ID
    f_train, _ = fuse(np.asarray(m_train.X), m_train.obs[sid].astype(str).to_numpy(), r_train,
                      e_train.obs[sid].astype(str).to_numpy(), rng)  # fmt: skip
    f_test, _ = fuse(np.asarray(m_test.X), m_test.obs[sid].astype(str).to_numpy(), r_test,
                     e_test.obs[sid].astype(str).to_numpy(), rng)  # fmt: skip
    runs = {
        "imaging": (m_train.X, _labels(m_train), m_test.X, _labels(m_test)),
        "real RNA": (r_train, _labels(e_train), r_test, _labels(e_test)),
        "imaging + real RNA": (f_train, _labels(m_train), f_test, _labels(m_test)),
    }
    out = {"classes": float(len(np.unique(_labels(m_train))))}
    out.update(
        {
            name: treatment_identification(*args, seed=seed).balanced_accuracy
            for name, args in runs.items()
        }
    )
    return out


def evaluate(folder: Path, seed: int) -> dict[str, float]:
    """Balanced accuracies of the three inputs on one simulated folder, and the replicate (and
    round) effects relative to the median treatment effect."""
    morph = ad.read_h5ad(folder / "morphology.h5ad")
    expr = ad.read_h5ad(folder / "expression.h5ad")
    roles = set(map(str, morph.uns[K.UNS]["replicate_roles"].values()))
    rounds = "test_round" in roles
    out: dict[str, float] = {}
    for role in [r for r in TESTS if r in roles]:
        scores = _scores(morph, expr, role, seed)
        out.update({f"{k} ({TESTS[role]})" if rounds else k: v for k, v in scores.items()})
    control = str(morph.uns[K.UNS]["control"])
    z = StandardScaler().fit_transform(np.asarray(morph.X))
    pcs = ExpressionSpace.fit(normalize_log1p(expr.X), n_pcs=50, seed=seed)
    spaces = {"imaging": (z, morph.obs),
              "RNA": (pcs.transform(normalize_log1p(expr.X)), expr.obs)}  # fmt: skip
    effects = {"replicate": "within", "round": "across"} if rounds else {"batch": "all"}
    for name, (x, obs) in spaces.items():
        for effect, pairs in effects.items():
            out[f"{effect}/treatment {name}"] = batch_to_treatment(x, obs, control, pairs)
    return out


def _parse_sets(items: list[str]) -> dict[str, object]:
    types = {f.name: f.type for f in dataclasses.fields(SimulatorConfig)}
    out: dict[str, object] = {}
    for item in items:
        key, value = item.split("=", 1)
        kind = types[key]
        if kind == "bool":
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = int(value) if kind == "int" else float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    parser.add_argument("--rounds", default="", help="replicates per round, e.g. 4,1")
    args = parser.parse_args()
    overrides = _parse_sets(args.set)
    if args.rounds:
        rounds = tuple(int(k) for k in args.rounds.split(","))
        overrides.update(rounds=rounds, n_replicates=sum(rounds))
    scores: dict[str, list[float]] = {}
    for seed in args.seeds:
        config = SimulatorConfig(seed=seed, **overrides)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            folder = simulate(Path(tmp) / "sim", config)
            took = time.perf_counter() - start
            result = evaluate(folder, seed)
        for k, v in result.items():
            scores.setdefault(k, []).append(v)
        print(f"seed {seed} (simulate {took:.1f} s): "
              + ", ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)  # fmt: skip
    for k, v in scores.items():
        print(f"{k:>42s}: {np.mean(v):.3f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.3f}")


if __name__ == "__main__":
    main()
