"""Semi-real benchmark: real treated single-cell counts, simulated morphology, held-out samples.

The simulator alone cannot show that the decoder and the generator produce realistic *real*
counts. Here the expression is real:

- ``--dataset glioblastoma``: slices of 5 patients treated with panobinostat or DMSO
  (``../shared/data/glioblastoma-panobinostat-lemur``, raw UMI counts, 300 genes); a group is
  patient x condition; whole patients are held out (``--test``).
- ``--dataset pc9``: PC9 lung adenocarcinoma cells, 11 days of erlotinib or control (Drop-seq,
  ``../shared/data/pc9-erlotinib-dropseq``, the 2,000 most variable genes of the training
  half); each condition's cells are split at random into two halves ``A`` / ``B`` that play the
  replicates; a group is condition x half; half ``B`` is held out.

Every group's cells are split in two disjoint halves: one half is the group's expression; the
other half is turned into the group's *morphology* through a fixed random nonlinear map plus
noise, so morphology carries the group's state and nothing else (no cell is in both
modalities). The model is trained on the rest and scored on the held-out samples with
``phenoseq evaluate``, plus the recovery of the top-50 treated-vs-control DEGs (overlap and log
fold-change correlation) per held-out sample.

    .venv/bin/python bench/semireal.py --out bench/out/semireal --test PW034,PW040
    .venv/bin/python bench/semireal.py --dataset pc9 --out bench/out/semireal_pc9
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from phenoseq.config import InputConfig  # noqa: E402
from phenoseq.data import SplitConfig  # noqa: E402
from phenoseq.data.transforms import normalize_log1p  # noqa: E402
from phenoseq.evaluate.deg import wilcoxon_z  # noqa: E402
from phenoseq.evaluate.run import evaluate, write_evaluation  # noqa: E402
from phenoseq.io import write_h5ad  # noqa: E402
from phenoseq.model import train_model  # noqa: E402
from phenoseq.report.html import write_report  # noqa: E402
from phenoseq.train import TrainConfig  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
DATA = SHARED / "glioblastoma-panobinostat-lemur"
PC9 = SHARED / "pc9-erlotinib-dropseq"
N_FEATURES, N_PCS, NOISE = 40, 20, 0.5
PC9_GENES = 2000


def morphology_map(seed: int):
    """A fixed random nonlinear map from a cell's 20 expression PCs to 40 'morphology' features."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(N_PCS, 64)) / np.sqrt(N_PCS)
    w2 = rng.normal(size=(64, N_FEATURES)) / np.sqrt(64)

    def f(pcs: np.ndarray, noise_rng: np.random.Generator) -> np.ndarray:
        h = np.tanh(pcs @ w1)
        return h @ w2 + NOISE * noise_rng.normal(size=(len(pcs), N_FEATURES))

    return f


def glioblastoma() -> tuple[ad.AnnData, pd.DataFrame]:
    """The glioblastoma counts and their groups: patient x condition."""
    adata = ad.read_h5ad(DATA / "glioblastoma_example_data.h5ad")
    obs = pd.DataFrame({
        "Sample_ID": adata.obs["sample_id"].astype(str).to_numpy(),
        "Treatment": np.where(adata.obs["condition"].astype(str) == "ctrl", "DMSO",
                              "panobinostat"),
        "Replicate": adata.obs["patient_id"].astype(str).to_numpy(),
    }, index=adata.obs_names.astype(str))  # fmt: skip
    return adata, obs


def pc9(seed: int = 0, n_genes: int = PC9_GENES, cache: Path | None = None):
    """The PC9 counts (genes of both files, the ``n_genes`` most variable of half ``A``) and
    their groups: condition x random half (``A`` / ``B``, the replicates)."""
    if cache is not None and cache.exists():
        adata = ad.read_h5ad(cache)
    else:
        parts = []
        for name, treatment in (("Day11_control", "DMSO"), ("Day11_Erlotinib", "erlotinib")):
            t = pd.read_csv(PC9 / f"{name}.txt.gz", sep="\t", index_col=0, dtype={0: str})
            a = ad.AnnData(X=sp.csr_matrix(t.to_numpy(np.float32).T),
                           var=pd.DataFrame(index=t.index.astype(str)))  # fmt: skip
            a.obs_names = [f"{treatment}_{b}" for b in t.columns]
            a.obs["Treatment"] = treatment
            parts.append(a)
        adata = ad.concat(parts, join="inner")
        adata.var_names_make_unique()
        if cache is not None:
            write_h5ad(adata, cache)
    rng = np.random.default_rng(seed)
    treatment = adata.obs["Treatment"].astype(str).to_numpy()
    half = np.empty(len(treatment), dtype=object)
    for t in np.unique(treatment):
        rows = rng.permutation(np.flatnonzero(treatment == t))
        half[rows[: len(rows) // 2]], half[rows[len(rows) // 2 :]] = "A", "B"
    var = normalize_log1p(adata.X[half == "A"], dtype=np.float32).var(axis=0)
    keep = np.sort(np.argsort(-var)[:n_genes])
    adata = adata[:, keep].copy()
    obs = pd.DataFrame({"Sample_ID": [f"{t}_{h}" for t, h in zip(treatment, half, strict=True)],
                        "Treatment": treatment, "Replicate": half.astype(str)},
                       index=adata.obs_names.astype(str))  # fmt: skip
    counted = np.asarray(adata.X.sum(axis=1)).ravel() > 0  # cells with none of these genes
    return adata[counted].copy(), obs[counted]


def build(out: Path, seed: int = 0, dataset: str = "glioblastoma") -> tuple[Path, Path]:
    """Write expression.h5ad (one half of each group) and morphology.h5ad (from the other)."""
    out.mkdir(parents=True, exist_ok=True)
    adata, obs = glioblastoma() if dataset == "glioblastoma" else pc9(seed, cache=out / "pc9.h5ad")
    rng = np.random.default_rng(seed)
    half = np.zeros(len(obs), dtype=bool)
    for g in obs["Sample_ID"].unique():
        rows = np.flatnonzero(obs["Sample_ID"].to_numpy() == g)
        half[rng.permutation(rows)[: len(rows) // 2]] = True
    log = normalize_log1p(adata.X)
    # the PCA that feeds the map is fitted on the morphology half only (a fixed feature extractor)
    mean = log[~half].mean(axis=0)
    _, _, vt = np.linalg.svd(log[~half] - mean, full_matrices=False)
    pcs = (log[~half] - mean) @ vt[:N_PCS].T
    pcs /= pcs.std(axis=0)
    feats = morphology_map(seed + 1)(pcs, rng)
    morph = ad.AnnData(
        X=feats.astype(np.float32), obs=obs[~half].copy(),
        var=pd.DataFrame(index=[f"Cells_Sim_{j}" for j in range(N_FEATURES)]),
    )  # fmt: skip
    expr = ad.AnnData(X=adata.X[half].astype(np.float32), obs=obs[half].copy(),
                      var=pd.DataFrame(index=adata.var_names.astype(str)))  # fmt: skip
    m, e = out / "morphology.h5ad", out / "expression.h5ad"
    write_h5ad(morph, m)
    write_h5ad(expr, e)
    return m, e


def deg_recovery(generated: ad.AnnData, real: ad.AnnData, k: int = 50) -> dict:
    """Top-k treated-vs-DMSO DEGs per held-out sample (patient, or half): overlap and log-FC
    correlation.

    Real DEGs: Wilcoxon of the sample's real treated vs real DMSO cells; predicted: the same on
    generated cells (both conditions generated from that sample's morphology).
    """
    out = {}
    gl, rl = normalize_log1p(generated.X), normalize_log1p(real.X)
    treated = next(t for t in real.obs["Treatment"].unique() if t != "DMSO")
    for sample in sorted(real.obs["Replicate"].unique()):

        def pick(a, x, treatment, p=sample):
            return x[((a.obs["Replicate"] == p) & (a.obs["Treatment"] == treatment)).to_numpy()]

        r_t, r_c = pick(real, rl, treated), pick(real, rl, "DMSO")
        g_t, g_c = pick(generated, gl, treated), pick(generated, gl, "DMSO")
        rz, gz = wilcoxon_z(r_t, r_c), wilcoxon_z(g_t, g_c)
        top_r, top_g = np.argsort(-np.abs(rz))[:k], np.argsort(-np.abs(gz))[:k]
        fc_r, fc_g = r_t.mean(0) - r_c.mean(0), g_t.mean(0) - g_c.mean(0)
        out[sample] = {
            "treatment": treated, "overlap": len(np.intersect1d(top_r, top_g)) / k,
            "direction": float(np.mean(np.sign(gz[top_r]) == np.sign(rz[top_r]))),
            "logfc_pearson_all": float(np.corrcoef(fc_r, fc_g)[0, 1]),
            "logfc_pearson_top": float(np.corrcoef(fc_r[top_r], fc_g[top_r])[0, 1]),
            "fc_real": fc_r.tolist(), "fc_generated": fc_g.tolist(), "top_real": top_r.tolist(),
        }  # fmt: skip
    return out


def plot_fc(deg: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, len(deg), figsize=(5 * len(deg), 4.4), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for ax, (patient, d) in zip(axes.ravel(), deg.items(), strict=True):
        fr, fg = np.array(d["fc_real"]), np.array(d["fc_generated"])
        top = np.zeros(len(fr), bool)
        top[d["top_real"]] = True
        ax.scatter(fr[~top], fg[~top], s=8, c="#8d99ae", label="other genes")
        ax.scatter(fr[top], fg[top], s=12, c="#d1495b", label="real top-50 DEGs")
        lim = np.abs(np.concatenate([fr, fg])).max() * 1.05
        ax.plot([-lim, lim], [-lim, lim], c="k", lw=0.6)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel(f"real log1p fold change ({d['treatment']} - DMSO)")
        ax.set_ylabel("generated log1p fold change")
        ax.set_title(f"held-out sample {patient}: r = {d['logfc_pearson_all']:.2f}, "
                     f"top-50 overlap {d['overlap']:.2f}", fontsize=10)  # fmt: skip
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/semireal"))
    ap.add_argument("--dataset", choices=("glioblastoma", "pc9"), default="glioblastoma")
    ap.add_argument("--test", help="Held-out samples (glioblastoma: PW034,PW040; pc9: B).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--ae-steps", type=int, default=1500)
    ap.add_argument("--n-cells", type=int, default=250)
    args = ap.parse_args()
    source = DATA if args.dataset == "glioblastoma" else PC9
    if not source.exists():
        raise SystemExit(f"{source} is not available (../shared/data is optional)")
    m, e = build(args.out / "data", args.seed, args.dataset)
    test = tuple((args.test or ("PW034,PW040" if args.dataset == "glioblastoma" else "B"))
                 .split(","))  # fmt: skip
    inputs = InputConfig(m, e, control="DMSO", split=SplitConfig("replicate", test=test))
    tcfg = TrainConfig(seed=args.seed, max_steps=args.max_steps, ae_steps=args.ae_steps)
    model = train_model(inputs, args.out / "model", train_config=tcfg, progress=False)
    morph, expr = ad.read_h5ad(m), ad.read_h5ad(e)
    held_m = morph[morph.obs["Replicate"].isin(test)].copy()
    held_e = expr[expr.obs["Replicate"].isin(test)].copy()
    write_h5ad(held_m, args.out / "heldout_morphology.h5ad")
    write_h5ad(held_e, args.out / "heldout_expression.h5ad")
    gen = model.generate(held_m, n_cells=args.n_cells, seed=args.seed, progress=False)
    write_h5ad(gen, args.out / "generated.h5ad")
    ev = evaluate(model, gen, held_e, held_m, seed=args.seed, progress=False)
    write_evaluation(ev, args.out / "metrics.json")
    write_report(args.out / "metrics.json", args.out / "report.html")
    deg = deg_recovery(gen, held_e)
    plot_fc(deg, args.out / "deg_fold_change.png")
    summary = {p: {k: v for k, v in d.items() if not k.startswith(("fc_", "top_"))}
               for p, d in deg.items()}  # fmt: skip
    (args.out / "deg.json").write_text(json.dumps(summary, indent=1))
    mt = ev.metrics
    rows = {name: {k: entry[k]["all"]["value"] for k in ("energy_distance", "pearson_delta")}
            for name, entry in [("model", mt["model"]), *mt["baselines"].items(),
                                ("split_half", mt["ceilings"]["split_half"])]}  # fmt: skip
    (args.out / "scores.json").write_text(json.dumps(rows, indent=1))
    print(f"held-out samples {', '.join(test)}, all groups:")
    for name, r in rows.items():
        ed, rd = r["energy_distance"], r["pearson_delta"]
        print(f"  {name:17s} ED {_f(ed, '8.3f')}   r delta {_f(rd, '6.3f')}")
    print("DEG recovery:", json.dumps(summary, indent=1))


def _f(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


if __name__ == "__main__":
    main()
