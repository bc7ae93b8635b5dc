"""Commands that make or read data: simulate, featurize, embed, validate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import InputConfig, default
from ..errors import InputError
from ..simulate.config import SimulatorConfig
from ._app import Platemap, Quiet, app, console
from ._options import csv, opt, with_inputs

Out = Annotated[Path, opt("--out", help="Per-cell morphology (.h5ad) to write.")]


@app.command()
def featurize(
    out: Out,
    images: Annotated[
        Path | None, opt("--images", help="Folder of field images (or a zarr store).")
    ] = None,
    channel_map: Annotated[
        str | None,
        opt(
            "--channel-map",
            help="DNA=TOKEN,ER=TOKEN,RNA=TOKEN,"
            "AGP=TOKEN,Mito=TOKEN: each TOKEN a substring or regex of that "
            "channel's file names (integers: planes of multi-channel files).",
        ),
    ] = None,
    pattern: Annotated[
        str | None,
        opt(
            "--pattern",
            help="Regex with named groups plate, well (or row + col), site for Metadata_*.",
        ),
    ] = None,
    loaddata: Annotated[
        Path | None, opt("--loaddata", help="CellProfiler LoadData CSV (replaces both).")
    ] = None,
    platemap: Platemap = None,
    feature_set: Annotated[
        str | None,
        opt(
            "--feature-set",
            help="Measurements: fast or cp-measure (CellProfiler's own).",
            default_value="fast",
        ),
    ] = None,
    nucleus_diameter: Annotated[
        float | None,
        opt(
            "--nucleus-diameter",
            help="Typical nucleus diameter in pixels (scales every size).",
            default_value=40.0,
        ),
    ] = None,
    cell_channel: Annotated[
        str | None, opt("--cell-channel", help="Channel cells are grown in.", default_value="AGP")
    ] = None,
    illumination_correction: Annotated[
        bool | None,
        opt(
            "--illumination-correction/--no-illumination-correction",
            help="Divide each channel by its blurred self first.",
            default_value=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        opt("--config", help="TOML/JSON of segmentation and feature settings (flags override it)."),
    ] = None,
    save_masks: Annotated[
        Path | None, opt("--save-masks", help="Write nucleus and cell label TIFFs here.")
    ] = None,
    crops: Annotated[
        bool,
        opt(
            "--crops/--no-crops",
            help="Write single-cell crops to <out>.crops.zarr.",
            default_value=True,
        ),
    ] = True,
    scheduler: Annotated[
        str | None,
        opt(
            "--scheduler",
            help="Dask scheduler address; 'local' = a local cluster; 'inprocess' = no Dask.",
            default_value="in-process up to 4 fields, else a local cluster",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        opt("--workers", help="Workers of the local cluster.", default_value="one per core"),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Segment and measure Cell Painting fields: one row of CellProfiler-named features per cell."""
    from ..imaging.featurize import FeaturizeConfig, featurize_images
    from ..report.console import print_featurized

    cfg = FeaturizeConfig.load(config, feature_set=feature_set, nucleus_diameter=nucleus_diameter,
                               cell_channel=cell_channel,
                               illumination_correction=illumination_correction)  # fmt: skip
    adata = featurize_images(out, images, channel_map, pattern=pattern, loaddata=loaddata,
                             platemap=platemap, config=cfg, save_masks=save_masks,
                             save_crops=crops, scheduler=scheduler, n_workers=workers,
                             progress=not quiet)  # fmt: skip
    print_featurized(adata, out, console)


@app.command()
def embed(
    morphology: Annotated[Path, opt("--morphology", help="A `phenoseq featurize` output (.h5ad).")],
    out: Annotated[Path, opt("--out", help="The morphology with obsm embeddings.")],
    crops: Annotated[
        Path | None, opt("--crops", help="Crops zarr.", default_value="<morphology>.crops.zarr")
    ] = None,
    label_key: Annotated[
        str,
        opt(
            "--label-key",
            help="Treatment column that supervises the encoder (as train's --label-key; "
            "Metadata_-prefixed columns match too).",
            default_value="Treatment",
        ),
    ] = "Treatment",
    holdout_key: Annotated[
        str | None,
        opt("--holdout-key", help="Column whose --holdout values never teach the encoder."),
    ] = None,
    holdout: Annotated[
        str | None, opt("--holdout", help="Held-out values of --holdout-key, comma-separated.")
    ] = None,
    encoder: Annotated[
        Path | None,
        opt("--encoder", help="Reuse a saved encoder (<out>.encoder.safetensors); no training."),
    ] = None,
    external: Annotated[
        Path | None,
        opt(
            "--external",
            help="Embeddings from your own model "
            "(.npy, or .parquet/.csv with Metadata_CropIndex): stored as obsm "
            "X_external; no CNN.",
        ),
    ] = None,
    max_minutes: Annotated[
        float, opt("--max-minutes", help="Bound on encoder training.", default_value=4.0)
    ] = 4.0,
    epochs: Annotated[
        int, opt("--epochs", help="Training epochs (if time allows).", default_value=30)
    ] = 30,
    dim: Annotated[int, opt("--dim", help="Embedding dimension.", default_value=64)] = 64,
    seed: Annotated[int, opt("--seed", help="Random seed.", default_value=0)] = 0,
    quiet: Quiet = False,
) -> None:
    """Train a small CNN on the single-cell crops (weakly supervised by treatment) and embed
    every cell: obsm X_cnn and X_features_cnn, for --morphology-obsm."""
    from ..imaging.encoder import EncoderConfig, attach_embeddings, embed_morphology
    from ..report.console import print_embedded

    if external is not None:
        print_embedded(attach_embeddings(morphology, external, out), out, console)
        return
    cfg = EncoderConfig(n_embedding=dim, epochs=epochs, max_minutes=max_minutes, seed=seed)
    adata = embed_morphology(morphology, out, crops=crops, label_key=label_key,
                             holdout_key=holdout_key, holdout=csv(holdout), encoder=encoder,
                             config=cfg, progress=not quiet)  # fmt: skip
    print_embedded(adata, out, console)


@app.command()
@with_inputs
def validate(
    inputs: InputConfig,
    out: Annotated[Path | None, opt("--out", help="Also write the summary as JSON.")] = None,
) -> None:
    """Read, validate, pair and split the inputs; print a summary."""
    from ..data import describe_inputs
    from ..io import write_json
    from ..report.console import print_summary

    summary = describe_inputs(inputs)
    print_summary(summary, console)
    if out is not None:
        write_json(summary, out)
        console.print(f"summary written to {out}")


def _doses(value: str | None) -> tuple[float, ...] | None:
    try:
        return tuple(float(d) for d in csv(value)) if value else None
    except ValueError as exc:
        raise InputError(f"--doses '{value}' is not a list of numbers.",
                         "pass e.g. 0.1,1,10") from exc  # fmt: skip


def _sim(flag: str, help: str) -> typer.models.OptionInfo:
    """A simulator flag; its default is the :class:`SimulatorConfig` field's."""
    name = flag[2:].replace("-", "_")
    return opt(flag, help=help, default_value=default(SimulatorConfig, name))


@app.command()
def simulate(
    out: Annotated[Path, opt("--out", help="Folder to write (replaced if it exists).")],
    seed: Annotated[int, _sim("--seed", "Random seed (same seed, same files).")] = 0,
    n_treatments: Annotated[int | None, _sim("--n-treatments", "Treatments besides DMSO "
                            "(compound x dose).")] = None,
    n_replicates: Annotated[int | None, _sim("--n-replicates", "Replicates: train x (R-2), "
                            "calib, test; with --rounds, their sum.")] = None,
    rounds: Annotated[str | None, _sim("--rounds", "Experiment rounds: replicates per round, "
                      "comma-separated, e.g. 4,1 (round 2 = a held-out round).")] = None,
    n_unseen_compounds: Annotated[int | None, _sim("--n-unseen-compounds", "Compounds only in "
                                  "the held-out replicates.")] = None,
    doses: Annotated[str | None, _sim("--doses", "Doses in uM, comma-separated.")] = None,
    n_cells_per_sample: Annotated[int | None, opt("--n-cells-per-sample", help="Imaged and "
                                  "sequenced cells per sample (sets both).")] = None,
    n_morphology_cells: Annotated[int | None, _sim("--n-morphology-cells", "Imaged cells per "
                                  "sample.")] = None,
    n_expression_cells: Annotated[int | None, _sim("--n-expression-cells", "Sequenced cells per "
                                  "sample.")] = None,
    n_truth_cells: Annotated[int | None, _sim("--n-truth-cells", "Truth cells per treatment x "
                             "replicate.")] = None,
    n_genes: Annotated[int | None, _sim("--n-genes", "Genes.")] = None,
    n_fields: Annotated[int | None, _sim("--n-fields", "Whole fields of view to render.")] = None,
    features_only: Annotated[bool, opt("--features-only", help="No pixels: surrogate features, "
                             "streamed.")] = False,
    images: Annotated[bool, opt("--images", help="Also write every sample's fields (PNG) + "
                      "platemap.tsv.")] = False,
    chunk_size: Annotated[int | None, _sim("--chunk-size", "Cells generated and written per "
                          "step.")] = None,
    quiet: Quiet = False,
) -> None:  # fmt: skip
    """Simulate a paired dataset with a known answer (defaults: docs/simulator.md)."""
    from ..simulate import simulate as run_simulation
    from ..simulate import summarize_config

    config = simulator_config(locals())
    path = run_simulation(out, config, progress=not quiet)
    console.print(summarize_config(config), soft_wrap=True, highlight=False)
    console.print(f"written to {path}", soft_wrap=True, highlight=False)


def simulator_config(flags: dict) -> SimulatorConfig:
    """The :class:`SimulatorConfig` of ``simulate``'s flags (None: the config's default)."""
    each = flags["n_cells_per_sample"]  # the per-modality flags win over it
    rounds = tuple(int(v) for v in csv(flags["rounds"])) if flags["rounds"] else None
    n_rep = flags["n_replicates"] if flags["n_replicates"] or not rounds else sum(rounds)
    given = {k: flags[k] for k in ("n_treatments", "n_unseen_compounds", "n_truth_cells",
                                   "n_genes", "n_fields", "chunk_size")}  # fmt: skip
    given |= {
        "n_replicates": n_rep, "rounds": rounds, "doses": _doses(flags["doses"]),
        "n_morphology_cells": each if flags["n_morphology_cells"] is None
        else flags["n_morphology_cells"],
        "n_expression_cells": each if flags["n_expression_cells"] is None
        else flags["n_expression_cells"],
    }  # fmt: skip
    return SimulatorConfig(seed=flags["seed"], features_only=flags["features_only"],
                           write_images=flags["images"],
                           **{k: v for k, v in given.items() if v is not None})  # fmt: skip
