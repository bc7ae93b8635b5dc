"""Command-line interface: one subcommand per stage, each a thin wrapper over a library function.

Bad input raises :class:`phenoseq.errors.InputError`; :func:`main` prints it as one line on stderr
and exits with code 2 (no traceback).
"""

from __future__ import annotations

import functools
import inspect
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .config import InputConfig
from .data import SplitConfig, load_paired, summarize
from .data.features import parse_feature_list
from .errors import InputError
from .io import write_h5ad, write_json
from .report.console import print_summary

app = typer.Typer(
    name="phenoseq",
    help="Predicted single-cell transcriptomes from Cell Painting morphology.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


# ----------------------------------------------------------------------------------------------
# the shared input flags of every command that reads data (docs/data-contract.md)
# ----------------------------------------------------------------------------------------------

Morphology = Annotated[
    Path,
    typer.Option(
        "--morphology",
        help="Morphology: .h5ad, CellProfiler/pycytominer table (csv, csv.gz, parquet, "
        "SQLite) or a folder of *_Cells.csv ... files.",
    ),
]
MorphologyObsm = Annotated[
    str | None,
    typer.Option("--morphology-obsm", help="Use this obsm key of a morphology .h5ad as features."),
]
Features = Annotated[
    str | None,
    typer.Option(
        "--features",
        help="Feature columns: COL1,COL2,... or @file "
        "(default: inferred by Cells_/Cytoplasm_/Nuclei_ prefix).",
    ),
]
Platemap = Annotated[
    Path | None, typer.Option("--platemap", help="Plate map TSV joined to the morphology by well.")
]
Expression = Annotated[
    Path, typer.Option("--expression", help="Expression .h5ad (or .gct for continuous profiles).")
]
Layer = Annotated[
    str | None, typer.Option("--layer", help="Read expression values from this layer instead of X.")
]
ExpressionObsm = Annotated[
    str | None,
    typer.Option("--expression-obsm", help="Use this obsm embedding (e.g. scGPT) as the target."),
]
ExpressionKindOpt = Annotated[
    str,
    typer.Option(
        "--expression-kind", help="counts (raw integer counts) or continuous (never auto-detected)."
    ),
]
Backed = Annotated[
    bool | None,
    typer.Option(
        "--backed/--in-memory",
        help="Keep expression X on disk and read it in blocks (default: backed when the dense "
        "X would exceed 4 GiB).",
    ),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto (a GPU when PyTorch sees one) | cpu | cuda[:N].")
]
PairKey = Annotated[
    str, typer.Option("--pair-key", help="Column(s) pairing the modalities, comma-separated.")
]
LabelKey = Annotated[
    str | None,
    typer.Option(
        "--label-key",
        help="Treatment label column (default: Treatment if present, else the pair key).",
    ),
]
Control = Annotated[
    str | None, typer.Option("--control", help="Label of the control treatment, e.g. DMSO.")
]
SplitKindOpt = Annotated[str, typer.Option("--split", help="none | replicate | treatment.")]
ReplicateKey = Annotated[
    str, typer.Option("--replicate-key", help="Replicate column for --split replicate.")
]
Val = Annotated[
    str | None, typer.Option("--val", help="Validation replicates or treatments, comma-separated.")
]
Calib = Annotated[
    str | None,
    typer.Option("--calib", help="Calibration replicates or treatments, comma-separated."),
]
Test = Annotated[
    str | None, typer.Option("--test", help="Test replicates or treatments, comma-separated.")
]


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def input_config(
    morphology: Path,
    expression: Path,
    morphology_obsm: str | None = None,
    features: str | None = None,
    platemap: Path | None = None,
    layer: str | None = None,
    expression_obsm: str | None = None,
    expression_kind: str = "counts",
    backed: bool | None = None,
    pair_key: str = "Sample_ID",
    label_key: str | None = None,
    control: str | None = None,
    split: str = "none",
    replicate_key: str = "Replicate",
    val: str | None = None,
    calib: str | None = None,
    test: str | None = None,
) -> InputConfig:
    """Build the :class:`InputConfig` from the shared flags (one place for every command)."""
    if expression_kind not in ("counts", "continuous"):
        raise InputError(
            f"unknown --expression-kind '{expression_kind}'.", "use counts or continuous"
        )
    if split not in ("none", "replicate", "treatment"):
        raise InputError(f"unknown --split '{split}'.", "use none, replicate or treatment")
    feats = parse_feature_list(features)
    return InputConfig(
        morphology=morphology,
        expression=expression,
        morphology_obsm=morphology_obsm,
        features=tuple(feats) if feats is not None else None,
        platemap=platemap,
        layer=layer,
        expression_obsm=expression_obsm,
        expression_kind=expression_kind,  # type: ignore[arg-type]
        backed=backed,
        pair_key=_csv(pair_key),
        label_key=label_key,
        control=control,
        split=SplitConfig(split, replicate_key, _csv(val), _csv(calib), _csv(test)),  # type: ignore[arg-type]
    )


_INPUT_FLAGS = [
    ("morphology", Morphology, inspect.Parameter.empty),
    ("expression", Expression, inspect.Parameter.empty),
    ("morphology_obsm", MorphologyObsm, None),
    ("features", Features, None),
    ("platemap", Platemap, None),
    ("layer", Layer, None),
    ("expression_obsm", ExpressionObsm, None),
    ("expression_kind", ExpressionKindOpt, "counts"),
    ("backed", Backed, None),
    ("pair_key", PairKey, "Sample_ID"),
    ("label_key", LabelKey, None),
    ("control", Control, None),
    ("split", SplitKindOpt, "none"),
    ("replicate_key", ReplicateKey, "Replicate"),
    ("val", Val, None),
    ("calib", Calib, None),
    ("test", Test, None),
]


def with_input_flags(fn):
    """Give a command the shared input flags; it receives them as one ``inputs: InputConfig``."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "inputs"]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, ann, default in _INPUT_FLAGS
    ]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

    @functools.wraps(fn)
    def command(**kwargs):
        flags = {name: kwargs.pop(name) for name, _, _ in _INPUT_FLAGS}
        return fn(inputs=input_config(**flags), **kwargs)

    command.__signature__ = sig.replace(parameters=shared + own)
    del command.__wrapped__  # typer must see the new signature, not the wrapped one
    return command


# ----------------------------------------------------------------------------------------------
# commands (each: parse, call one library function, print the output path / summary)
# ----------------------------------------------------------------------------------------------


@app.command()
def featurize(
    out: Annotated[Path, typer.Option("--out", help="Per-cell morphology (.h5ad) to write.")],
    images: Annotated[
        Path | None, typer.Option("--images", help="Folder of field images (or a zarr store).")
    ] = None,
    channel_map: Annotated[
        str | None,
        typer.Option(
            "--channel-map",
            help="DNA=TOKEN,ER=TOKEN,RNA=TOKEN,AGP=TOKEN,Mito=TOKEN: each TOKEN a substring or "
            "regex of that channel's file names (integers: planes of multi-channel files).",
        ),
    ] = None,
    pattern: Annotated[
        str | None,
        typer.Option(
            "--pattern",
            help="Regex with named groups plate, well (or row + col), site for Metadata_*.",
        ),
    ] = None,
    loaddata: Annotated[
        Path | None, typer.Option("--loaddata", help="CellProfiler LoadData CSV (replaces both).")
    ] = None,
    platemap: Platemap = None,
    features: Annotated[
        str | None, typer.Option("--features", help="fast (default) or cp-measure.")
    ] = None,
    nucleus_diameter: Annotated[
        float | None,
        typer.Option(help="Typical nucleus diameter in pixels (scales every size; default 40)."),
    ] = None,
    cell_channel: Annotated[
        str | None, typer.Option(help="Channel cells are grown in (default AGP).")
    ] = None,
    illumination_correction: Annotated[
        bool | None, typer.Option(help="Divide each channel by its blurred self first.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML/JSON of segmentation and feature settings."),
    ] = None,
    save_masks: Annotated[
        Path | None, typer.Option("--save-masks", help="Write nucleus and cell label TIFFs here.")
    ] = None,
    crops: Annotated[
        bool, typer.Option(help="Write single-cell crops to <out>.crops.zarr.")
    ] = True,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address; 'local' = a local cluster; 'inprocess' = no Dask "
            "(default: in-process up to 4 fields, else a local cluster)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Workers of the local cluster (default: one per core).")
    ] = None,
) -> None:
    """Segment and measure Cell Painting fields: one row of CellProfiler-named features per cell."""
    from .imaging.featurize import FeaturizeConfig, featurize_images, read_config

    settings = read_config(config) if config is not None else {}
    flags = {
        "features": features,
        "nucleus_diameter": nucleus_diameter,
        "cell_channel": cell_channel,
        "illumination_correction": illumination_correction,
    }
    settings |= {k: v for k, v in flags.items() if v is not None}  # fmt: skip
    adata = featurize_images(
        out, images, channel_map, pattern=pattern, loaddata=loaddata, platemap=platemap,
        config=FeaturizeConfig.from_dict(settings), save_masks=save_masks, save_crops=crops,
        scheduler=scheduler, n_workers=workers,
    )  # fmt: skip
    info = adata.uns["phenoseq"]["featurize"]
    failed = info["failed_fields"]
    console.print(f"{adata.n_obs} cells x {adata.n_vars} features from {info['n_fields_done']} of "
                  f"{info['n_fields']} fields written to {out}")  # fmt: skip
    for name, err in failed.items():
        err_console.print(f"[yellow]skipped field {name}:[/] {err}")


@app.command()
def embed(
    morphology: Annotated[
        Path, typer.Option("--morphology", help="A `phenoseq featurize` output (.h5ad).")
    ],
    out: Annotated[Path, typer.Option("--out", help="The morphology with obsm embeddings.")],
    crops: Annotated[
        Path | None, typer.Option(help="Crops zarr (default: <morphology>.crops.zarr).")
    ] = None,
    label_key: Annotated[
        str, typer.Option(help="Treatment column that supervises the encoder.")
    ] = "Metadata_Treatment",
    holdout_key: Annotated[
        str | None, typer.Option(help="Column whose --holdout values never teach the encoder.")
    ] = None,
    holdout: Annotated[
        str | None, typer.Option(help="Held-out values of --holdout-key, comma-separated.")
    ] = None,
    encoder: Annotated[
        Path | None,
        typer.Option(help="Reuse a saved encoder (<out>.encoder.safetensors); no training."),
    ] = None,
    external: Annotated[
        Path | None,
        typer.Option(
            help="Embeddings from your own model (.npy, or .parquet/.csv with "
            "Metadata_CropIndex): stored as obsm X_external; no CNN."
        ),
    ] = None,
    max_minutes: Annotated[float, typer.Option(help="Bound on encoder training.")] = 4.0,
    epochs: Annotated[int, typer.Option(help="Training epochs (if time allows).")] = 30,
    dim: Annotated[int, typer.Option(help="Embedding dimension.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train a small CNN on the single-cell crops (weakly supervised by treatment) and embed
    every cell: obsm X_cnn and X_features_cnn, for --morphology-obsm."""
    from .imaging.encoder import EncoderConfig, attach_embeddings, embed_morphology

    if external is not None:
        adata = attach_embeddings(morphology, external, out)
        console.print(
            f"{adata.n_obs} cells x {adata.obsm['X_external'].shape[1]} external "
            f"dimensions (obsm X_external, X_features_external) written to {out}"
        )
        return
    cfg = EncoderConfig(n_embedding=dim, epochs=epochs, max_minutes=max_minutes, seed=seed)
    adata = embed_morphology(morphology, out, crops=crops, label_key=label_key,
                             holdout_key=holdout_key, holdout=_csv(holdout), encoder=encoder,
                             config=cfg)  # fmt: skip
    hist = adata.uns["phenoseq"]["encoder"].get("history")
    if hist:
        held = hist["heldout_accuracy"]
        console.print(f"encoder: {hist['epochs']} epochs in {hist['seconds']:.0f} s, treatment "
                      f"accuracy train {hist['train_accuracy']:.2f}"
                      + (f", held-out rows {held:.2f}" if held is not None else "")
                      + f" ({hist['n_classes']} treatments)")  # fmt: skip
    console.print(f"{adata.n_obs} cells embedded (obsm X_cnn, X_features_cnn) written to {out}")


@app.command()
@with_input_flags
def validate(
    inputs: InputConfig,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the summary as JSON.")
    ] = None,
) -> None:
    """Read, validate, pair and split the inputs; print a summary."""
    summary = summarize(load_paired(inputs))
    print_summary(summary)
    if out is not None:
        write_json(summary, out)
        console.print(f"summary written to {out}")


@app.command()
@with_input_flags
def train(
    inputs: InputConfig,
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    max_steps: Annotated[int, typer.Option(help="Diffusion training steps.")] = 3000,
    ae_steps: Annotated[int, typer.Option(help="Autoencoder training steps.")] = 1500,
    max_minutes: Annotated[
        float | None, typer.Option(help="Bound on the whole command; training stops early.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Cells per step.")] = 256,
    set_size: Annotated[int, typer.Option(help="Morphology cells per condition set (N).")] = 16,
    n_latent: Annotated[int, typer.Option(help="Latent dimension of the autoencoder.")] = 64,
    n_top_genes: Annotated[
        int | None, typer.Option(help="Keep the N most variable training genes.")
    ] = None,
    batch_key: Annotated[
        str,
        typer.Option(
            help="Normalise morphology per batch (this obs column) against its control "
            "cells; auto = the replicate column when every batch has controls; none = one "
            "scaler from the training controls."
        ),
    ] = "none",
    resume: Annotated[bool, typer.Option(help="Continue a killed run of the same --out.")] = False,
    device: DeviceOpt = "auto",
    precision: Annotated[
        str, typer.Option(help="auto (bf16 autocast on a GPU with bf16) | fp32 | bf16.")
    ] = "auto",
) -> None:
    """Train the image-conditioned diffusion model; write a model directory."""
    from .model import ModelConfig, train_model
    from .train import TrainConfig

    tcfg = TrainConfig(batch_size=batch_size, set_size=set_size, ae_steps=ae_steps,
                       max_steps=max_steps, max_minutes=max_minutes, seed=seed, device=device,
                       precision=precision)  # fmt: skip
    mcfg = ModelConfig(n_latent=n_latent, n_top_genes=n_top_genes, batch_key=batch_key)
    model = train_model(inputs, out, mcfg, tcfg, resume=resume)
    early = " (stopped early by --max-minutes)" if model.history.get("stopped_early") else ""
    from .train import world

    if world()[0] == 0:  # under torchrun only rank 0 wrote
        console.print(f"model written to {out}{early}")


@app.command()
def generate(
    model: Annotated[Path, typer.Option("--model", help="Model directory from `phenoseq train`.")],
    morphology: Morphology,
    out: Annotated[Path, typer.Option("--out", help="Generated cells (.h5ad) to write.")],
    n_cells: Annotated[int, typer.Option(help="Cells to generate per pairing group.")] = 100,
    steps: Annotated[int, typer.Option(help="Sampler steps.")] = 20,
    guidance: Annotated[
        float, typer.Option(help="Classifier-free guidance scale (1 = off).")
    ] = 1.0,
    sampler: Annotated[str, typer.Option(help="dpmpp_2m | ddim | ddpm.")] = "dpmpp_2m",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    set_size: Annotated[
        int | None,
        typer.Option(help="Morphology cells per condition set (default: the training N)."),
    ] = None,
    morphology_obsm: MorphologyObsm = None,
    platemap: Platemap = None,
    summary: Annotated[
        Path | None,
        typer.Option(
            "--summary",
            help="Also write the per-group summary (.h5ad): mean, intervals, confidence, OOD.",
        ),
    ] = None,
    n_draws: Annotated[int, typer.Option(help="Pseudo-bulk draws per group (--summary).")] = 20,
    cells_per_draw: Annotated[int, typer.Option(help="Generated cells per draw.")] = 50,
    levels: Annotated[
        str | None,
        typer.Option(help="Interval levels, comma-separated (default 0.5,0.8,0.9,0.95)."),
    ] = None,
    ood_threshold: Annotated[
        float, typer.Option(help="Flag groups whose confidence is below this.")
    ] = 0.05,
    device: DeviceOpt = "auto",
) -> None:
    """Generate expression for every pairing group of new morphology."""
    from .data import read_morphology
    from .data.pairing import group_ids, with_key_aliases
    from .model import PhenoSeqModel
    from .train import resolve_device

    if sampler not in ("dpmpp_2m", "ddim", "ddpm"):
        raise InputError(f"unknown --sampler '{sampler}'.", "use dpmpp_2m, ddim or ddpm")
    m = PhenoSeqModel.load(model).to(resolve_device(device))
    adata = read_morphology(morphology, obsm_key=morphology_obsm, platemap=platemap)
    if summary is not None:  # first: its settings are checked before anything is written
        from .uncertainty import Calibration, parse_levels, summarize

        summ = summarize(m, adata, Calibration.load(model), parse_levels(levels), n_draws,
                         cells_per_draw, ood_threshold, seed, n_steps=steps, guidance=guidance,
                         sampler=sampler, set_size=set_size)  # fmt: skip
    m.generate_to(
        out,
        adata,
        n_cells,
        steps,
        guidance,
        sampler,
        seed,  # type: ignore[arg-type]
        set_size=set_size,
        uns={"model": str(model)},
    )  # streamed group by group
    n_groups = group_ids(with_key_aliases(adata.obs, m.registry.pair_key), m.registry.pair_key,
                         "morphology").nunique()  # fmt: skip
    console.print(f"{n_groups * n_cells} cells x {len(m.registry.genes)} genes for {n_groups} "
                  f"groups written to {out}", soft_wrap=True)  # fmt: skip
    if summary is not None:
        write_h5ad(summ, summary)
        console.print(f"per-group summary ({summ.n_obs} groups) written to {summary}")
        if "ood_flag" in summ.obs and summ.obs["ood_flag"].any():
            flagged = summ.obs_names[summ.obs["ood_flag"].to_numpy()].tolist()
            err_console.print(f"[yellow]warning:[/] {len(flagged)} group(s) unlike the training "
                              f"data (confidence < {ood_threshold}): {', '.join(flagged[:10])}"
                              + (" ..." if len(flagged) > 10 else ""))  # fmt: skip


@app.command()
def calibrate(
    model: Annotated[Path, typer.Option("--model", help="Model directory from `phenoseq train`.")],
    morphology: Annotated[
        Path | None,
        typer.Option(help="Calibration morphology (default: the model's calib groups)."),
    ] = None,
    expression: Annotated[
        Path | None, typer.Option(help="Calibration expression (with --morphology).")
    ] = None,
    levels: Annotated[str | None, typer.Option(help="Levels, comma-separated.")] = None,
    n_draws: Annotated[int, typer.Option(help="Pseudo-bulk draws per group.")] = 20,
    cells_per_draw: Annotated[int, typer.Option(help="Generated cells per draw.")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Split-conformal calibration of the intervals and the OOD confidence on held-out groups;
    stored as calibration.json in the model directory."""
    import numpy as np

    from .uncertainty import calibrate_model, parse_levels

    cal = calibrate_model(model, morphology, expression, parse_levels(levels), n_draws,
                          cells_per_draw, seed)  # fmt: skip

    def multiplier(k: int) -> str:
        per_gene = cal.q_bulk_gene[k] if cal.q_bulk_gene else None
        if per_gene is None:
            return f"{cal.levels[k]:g}: {cal.q_bulk[k]:.2f} (pooled)"
        return f"{cal.levels[k]:g}: {np.median(per_gene):.2f} (median of per-gene)"

    n_seen = cal.scores_summary.get("n_seen_groups", cal.n_groups)
    qs = ", ".join(multiplier(k) for k in range(len(cal.levels)))
    console.print(f"calibrated on {n_seen} groups of seen treatments ({cal.n_groups} in all); "
                  f"interval multipliers {qs}; written to {model / 'calibration.json'}",
                  soft_wrap=True)  # fmt: skip


@app.command()
def suggest(
    summary: Annotated[
        Path, typer.Option("--summary", help="Per-group summary from `generate --summary`.")
    ],
    budget: Annotated[int, typer.Option(help="How many groups you can sequence.")],
    out: Annotated[Path, typer.Option("--out", help="Ranked list to write (.tsv or .csv).")],
    level: Annotated[
        float | None, typer.Option(help="Interval level whose width counts (default 0.9).")
    ] = None,
) -> None:
    """Rank groups by how much sequencing them would reduce uncertainty; write the top --budget."""
    import anndata as ad

    from .io import atomic_path
    from .uncertainty import suggest as rank

    if not summary.is_file():
        raise InputError("does not exist.", "pass the --summary file of `generate`", summary)
    table = rank(ad.read_h5ad(summary), budget, level)
    if "confidence" in table and table["confidence"].isna().all():
        err_console.print(
            "[yellow]warning:[/] uncalibrated summary: ranked by interval "
            "width only (run `phenoseq calibrate` before `generate --summary`)"
        )
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="," if out.suffix == ".csv" else "\t", index=False)
    for _, r in table.head(10).iterrows():
        console.print(f"{r['rank']:>3}  {r['group']}  confidence {r['confidence']:.2f}  "
                      f"width {r['mean_width']:.2f}  {r['reason']}")  # fmt: skip
    console.print(f"{len(table)} group(s) to sequence written to {out}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="Model directory from `phenoseq train`.")],
    generated: Annotated[
        Path, typer.Option("--generated", help="Generated cells (.h5ad) from `phenoseq generate`.")
    ],
    expression: Annotated[
        Path, typer.Option("--expression", help="Real held-out expression (.h5ad).")
    ],
    morphology: Annotated[
        Path, typer.Option("--morphology", help="Real held-out morphology (any reader format).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="metrics.json to write (plot data goes beside it).")
    ],
    train_expression: Annotated[
        Path | None, typer.Option(help="Training expression, if moved since training.")
    ] = None,
    train_morphology: Annotated[
        Path | None, typer.Option(help="Training morphology, if moved since training.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of subsamples and baseline draws.")] = 0,
    summary: Annotated[
        Path | None,
        typer.Option("--summary", help="`generate --summary` output: score its intervals too."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Score generated cells against real held-out cells, baselines and the split-half ceiling."""
    from .evaluate.run import evaluate as run_evaluation
    from .evaluate.run import plots_path, write_evaluation
    from .report.console import print_metrics

    ev = run_evaluation(model, generated, expression, morphology, train_expression,
                        train_morphology, seed=seed, progress=not quiet,
                        summary=summary)  # fmt: skip
    write_evaluation(ev, out)
    print_metrics(ev.metrics, console)
    unc = ev.metrics.get("uncertainty")
    if unc:
        for key, cov in unc["coverage"].items():
            cells = ", ".join(f"{lv}: {c['coverage']:.2f}" for lv, c in cov.items()
                              if c["coverage"] is not None)  # fmt: skip
            console.print(f"interval coverage {key}: {cells}")
        if unc.get("ood_auroc") is not None:
            console.print(f"OOD AUROC (unseen vs seen treatments): {unc['ood_auroc']:.3f}")
    console.print(f"metrics written to {out} (plot data: {plots_path(out).name})")


@app.command()
def report(
    metrics: Annotated[
        Path, typer.Option("--metrics", help="metrics.json of `phenoseq evaluate`.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Self-contained HTML report to write.")],
    figures: Annotated[
        Path | None, typer.Option(help="Also write each plot as a PNG into this folder.")
    ] = None,
) -> None:
    """Write the HTML report (plots embedded) of an evaluation."""
    from .report.html import write_report

    write_report(metrics, out, figures)
    console.print(f"report written to {out}" + (f" (PNGs in {figures})" if figures else ""))


def _doses(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(d) for d in _csv(value))
    except ValueError as exc:
        raise InputError(
            f"--doses '{value}' is not a list of numbers.", "pass e.g. 0.1,1,10"
        ) from exc


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (replaced if it exists).")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    n_treatments: Annotated[
        int | None, typer.Option(help="Treatments besides DMSO (compound x dose).")
    ] = None,
    n_replicates: Annotated[
        int | None, typer.Option(help="Replicates: train x (R-2), calib, test.")
    ] = None,
    n_unseen_compounds: Annotated[
        int | None, typer.Option(help="Compounds only in the held-out replicates.")
    ] = None,
    doses: Annotated[str | None, typer.Option(help="Doses in uM, comma-separated.")] = None,
    n_cells_per_sample: Annotated[
        int | None, typer.Option(help="Imaged and sequenced cells per sample (sets both).")
    ] = None,
    n_morphology_cells: Annotated[int | None, typer.Option(help="Imaged cells per sample.")] = None,
    n_expression_cells: Annotated[
        int | None, typer.Option(help="Sequenced cells per sample.")
    ] = None,
    n_truth_cells: Annotated[
        int | None, typer.Option(help="Truth cells per treatment x replicate.")
    ] = None,
    n_genes: Annotated[int | None, typer.Option(help="Genes.")] = None,
    n_fields: Annotated[int | None, typer.Option(help="Whole fields of view to render.")] = None,
    features_only: Annotated[
        bool, typer.Option("--features-only", help="No pixels: surrogate features, streamed.")
    ] = False,
    images: Annotated[
        bool,
        typer.Option("--images", help="Also write every sample's fields (PNG) + platemap.tsv."),
    ] = False,
    chunk_size: Annotated[
        int | None, typer.Option(help="Cells generated and written per step.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Simulate a paired dataset with a known answer (defaults: docs/simulator.md)."""
    from .simulate import SimulatorConfig, summarize_config
    from .simulate import simulate as run_simulation

    each = n_cells_per_sample  # the per-modality flags win over it
    flags = {
        "n_treatments": n_treatments, "n_replicates": n_replicates,
        "n_unseen_compounds": n_unseen_compounds, "n_truth_cells": n_truth_cells,
        "n_genes": n_genes, "n_fields": n_fields, "chunk_size": chunk_size,
        "doses": _doses(doses) if doses else None,
        "n_morphology_cells": n_morphology_cells if n_morphology_cells is not None else each,
        "n_expression_cells": n_expression_cells if n_expression_cells is not None else each,
    }  # fmt: skip
    config = SimulatorConfig(
        seed=seed,
        features_only=features_only,
        write_images=images,
        **{k: v for k, v in flags.items() if v is not None},
    )
    path = run_simulation(out, config, progress=not quiet)
    console.print(summarize_config(config), soft_wrap=True, highlight=False)
    console.print(f"written to {path}", soft_wrap=True, highlight=False)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for everything the demo writes.")
    ] = Path("demo_output"),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same numbers).")] = 0,
    max_steps: Annotated[int, typer.Option(help="Diffusion training steps.")] = 3000,
    ae_steps: Annotated[int, typer.Option(help="Autoencoder training steps.")] = 1500,
    from_images: Annotated[
        bool,
        typer.Option(
            "--from-images",
            help="Render every well and start from the images: featurize -> train -> ...",
        ),
    ] = False,
) -> None:
    """Run the pipeline on simulated data; print scores against the held-out replicate."""
    from .demo import DemoConfig, run_demo
    from .report.console import print_demo
    from .train import TrainConfig

    # the time bound is a safety net on slow machines; a normal run finishes well before it
    tcfg = TrainConfig(seed=seed, max_steps=max_steps, ae_steps=ae_steps, max_minutes=7.0)
    cfg = DemoConfig(seed=seed, train=tcfg, from_images=from_images)
    result = run_demo(out, cfg)
    print_demo(result, console)
    console.print(f"outputs in {out}/ (simulated/, model/, heldout_*.h5ad, generated.h5ad, "
                  "metrics.json, summary.json)")  # fmt: skip
    console.print(f"report: {result['report']}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: bad input is one line on stderr and exit code 2; PhenoSeq's
    own warnings are one ``warning:`` line each."""
    import warnings

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if "phenoseq" not in str(filename):
            return default(message, category, filename, lineno, file, line)
        err_console.print(f"[yellow]warning:[/] {message}", soft_wrap=True, highlight=False)

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("default", category=UserWarning, module=r"phenoseq\.")
            warnings.showwarning = show
            app(args=argv, prog_name="phenoseq")
    except SystemExit as exc:  # click exits 0 after success; callers (and tests) get a return
        if exc.code not in (0, None):
            raise
    except InputError as exc:
        err_console.print(f"error: {exc}", soft_wrap=True, highlight=False, markup=False)
        sys.exit(2)


@app.callback()
def _root() -> None:
    """Predicted single-cell transcriptomes from Cell Painting morphology."""


if __name__ == "__main__":
    main()
