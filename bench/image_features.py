"""Generation quality by morphology source: simulator features vs features measured from the
rendered images (`featurize`) vs the learned crop encoder (`embed`), same seed and training.

    .venv/bin/python bench/image_features.py --run bench/out/demo_images --reference \\
        bench/out/quality/seed0 --out bench/out/image_features

``--run`` is the output of ``phenoseq demo --from-images`` (its model was trained on the
featurized morphology); ``--reference`` a demo of the same seed on the simulator's own features.
The encoder is trained on replicates 1-2 only (3 = calibration and 4 = test are held out), then
a model is trained on each embedding with the demo's settings, generates for the test replicate
and is scored by ``phenoseq evaluate``. One line per morphology source.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from phenoseq import _keys as K
from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig, load_paired
from phenoseq.evaluate.run import evaluate
from phenoseq.imaging.encoder import EncoderConfig, embed_morphology
from phenoseq.model import PhenoSeqModel, train_model


def row(name: str, m: dict, extra: dict | None = None) -> dict:
    ti = m["treatment_identification"]
    return {
        "morphology": name, "ed_seen": m["model"]["energy_distance"]["seen"]["value"],
        "ed_unseen": m["model"]["energy_distance"]["unseen"]["value"],
        "r_delta_seen": m["model"]["pearson_delta"]["seen"]["value"],
        "ba_imaging": ti["balanced_accuracy"]["imaging"],
        "ba_generated": ti["balanced_accuracy"]["generated"], "gap_closure": ti["gap_closure"],
    } | (extra or {})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--reference", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench/out/image_features"))
    ap.add_argument("--encoder-minutes", type=float, default=4.0)
    ap.add_argument("--sources", default="X_cnn,X_features_cnn")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.reference is not None:
        rows.append(row("simulator features (reference demo)",
                        json.loads((args.reference / "metrics.json").read_text())))  # fmt: skip
    rows.append(row("featurize, default features (222)",
                    json.loads((args.run / "metrics.json").read_text())))  # fmt: skip
    print(json.dumps(rows[-1]), flush=True)
    base = PhenoSeqModel.load(args.run / "model")
    embedded = args.out / "embedded.h5ad"
    t0 = time.monotonic()
    adata = embed_morphology(
        args.run / "featurized.h5ad", embedded, label_key="Metadata_Treatment",
        holdout_key="Metadata_Replicate", holdout=("3", "4"),
        config=EncoderConfig(max_minutes=args.encoder_minutes, seed=base.train_config.seed),
        progress=False,
    )  # fmt: skip
    hist = adata.uns["phenoseq"]["encoder"]["history"] | {"embed_seconds": time.monotonic() - t0}
    print("encoder:", json.dumps({k: v for k, v in hist.items() if k != "loss"}), flush=True)
    sim = Path(base.registry.inputs["expression"])
    for key in args.sources.split(","):
        inputs = InputConfig(embedded, sim, morphology_obsm=key, control="DMSO",
                             split=SplitConfig("replicate", calib=("3",), test=("4",)))  # fmt: skip
        t0 = time.monotonic()
        model = train_model(inputs, args.out / f"model_{key}", base.config, base.train_config,
                            progress=False)  # fmt: skip
        seconds = time.monotonic() - t0
        paired = load_paired(inputs)
        test = {k: a[a.obs[K.ROLE] == "test"].copy()
                for k, a in (("m", paired.morphology), ("e", paired.expression))}  # fmt: skip
        for a in test.values():
            a.obs = a.obs.drop(columns=[K.GROUP, K.ROLE])
        gen = model.generate(test["m"], n_cells=100, seed=base.train_config.seed, progress=False)
        m = evaluate(model, gen, test["e"], test["m"], seed=base.train_config.seed,
                     progress=False).metrics  # fmt: skip
        rows.append(row(f"featurize + CNN ({key})", m, {"train_seconds": seconds}))
        print(json.dumps(rows[-1]), flush=True)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    lines = ["| morphology | ED seen | ED unseen | r delta seen | BA imaging | BA generated | "
             "gap closure |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['morphology']} | {r['ed_seen']:.3f} | {r['ed_unseen']:.3f} | "
                     f"{r['r_delta_seen']:.3f} | {r['ba_imaging']:.3f} | "
                     f"{r['ba_generated']:.3f} | {r['gap_closure']:.3f} |")  # fmt: skip
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
