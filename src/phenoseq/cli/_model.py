"""Commands around the model: train, generate, calibrate, suggest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from ..config import InputConfig, parse_levels
from ._app import Device, ModelDir, Platemap, Quiet, app, console, err_console
from ._options import Setting, opt, with_inputs, with_settings

SAMPLE = (
    Setting("sample", "n_steps", "Sampler steps.", flag="--steps"),
    Setting("sample", "guidance", "Classifier-free guidance scale (1 = off)."),
    Setting("sample", "sampler", "dpmpp_2m | ddim | ddpm."),
    Setting("sample", "seed", "Random seed."),
    Setting("sample", "set_size", "Morphology cells per condition set.", shown="the training N"),
)
DRAWS = (
    Setting("uncertainty", "n_draws", "Pseudo-bulk draws per group."),
    Setting("uncertainty", "n_cells_per_draw", "Generated cells per draw.",
            flag="--cells-per-draw"),
    Setting("uncertainty", "levels", "Interval levels, comma-separated.", parse=parse_levels),
)  # fmt: skip


@app.command()
@with_inputs
@with_settings(
    Setting("train", "max_steps", "Diffusion training steps."),
    Setting("train", "ae_steps", "Autoencoder training steps."),
    Setting("train", "max_minutes", "Bound on the whole command; training stops early."),
    Setting("train", "seed", "Random seed."),
    Setting("train", "batch_size", "Cells per step."),
    Setting("train", "set_size", "Morphology cells per condition set (N)."),
    Setting("train", "device", "auto (a GPU when PyTorch sees one) | cpu | cuda[:N]."),
    Setting("train", "precision", "auto (bf16 autocast on a GPU with bf16) | fp32 | bf16."),
    Setting("model", "n_latent", "Latent dimension of the autoencoder."),
    Setting("model", "n_variable_genes", "Keep the N training genes of largest variance of "
            "log1p (not scanpy's dispersion-based n_top_genes)."),
    Setting("model", "batch_key", "Normalise morphology per batch (this obs column) against "
            "its control cells; auto = the replicate column when every batch has controls; "
            "none = one scaler from the training controls."),
)  # fmt: skip
def train(
    inputs: InputConfig,
    settings: dict,
    out: Annotated[Path, opt("--out", help="Model directory to write.")],
    resume: Annotated[
        bool, opt("--resume", help="Continue a killed run of the same --out.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Train the image-conditioned diffusion model; write a model directory."""
    from ..model import train_model
    from ..train import world

    model = train_model(inputs, out, settings["model"], settings["train"], resume=resume,
                        progress=not quiet)  # fmt: skip
    if world()[0] == 0:  # under torchrun only rank 0 wrote
        early = " (stopped early by --max-minutes)" if model.history.get("stopped_early") else ""
        console.print(f"model written to {out}{early}")


@app.command()
@with_settings(
    Setting("sample", "n_cells", "Cells to generate per pairing group."), *SAMPLE, *DRAWS,
    Setting("uncertainty", "ood_threshold", "Flag groups whose confidence is below this."),
)  # fmt: skip
def generate(
    settings: dict,
    model: ModelDir,
    morphology: Annotated[
        Path, opt("--morphology", help="Morphology of the wells to predict (any reader format).")
    ],
    out: Annotated[Path, opt("--out", help="Generated cells (.h5ad) to write.")],
    morphology_obsm: Annotated[
        str | None,
        opt("--morphology-obsm", help="Use this obsm key of a morphology .h5ad as features."),
    ] = None,
    platemap: Platemap = None,
    summary: Annotated[
        Path | None,
        opt(
            "--summary",
            help="Also write the per-group summary (.h5ad): mean, intervals, confidence, OOD.",
        ),
    ] = None,
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Generate expression for every pairing group of new morphology."""
    from ..data import read_morphology
    from ..report.console import print_generated
    from ..uncertainty import generate_outputs

    adata = read_morphology(morphology, obsm_key=morphology_obsm, platemap=platemap)
    result = generate_outputs(model, adata, out, settings["sample"], summary,
                              settings["uncertainty"], device, progress=not quiet)  # fmt: skip
    print_generated(result, settings["uncertainty"].ood_threshold, console, err_console)


@app.command()
@with_settings(*SAMPLE, *DRAWS)
def calibrate(
    settings: dict,
    model: ModelDir,
    morphology: Annotated[
        Path | None,
        opt(
            "--morphology", help="Calibration morphology.", default_value="the model's calib groups"
        ),
    ] = None,
    expression: Annotated[
        Path | None, opt("--expression", help="Calibration expression (with --morphology).")
    ] = None,
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Split-conformal calibration of the intervals and the OOD confidence on held-out groups;
    stored as calibration.json in the model directory."""
    from ..report.console import print_calibration
    from ..uncertainty import calibrate_model

    cal = calibrate_model(model, morphology, expression, settings["uncertainty"],
                          settings["sample"], progress=not quiet, device=device)  # fmt: skip
    print_calibration(cal, model, console)


@app.command()
def suggest(
    summary: Annotated[Path, opt("--summary", help="Per-group summary from `generate --summary`.")],
    budget: Annotated[int, opt("--budget", help="How many groups you can sequence.")],
    out: Annotated[Path, opt("--out", help="Ranked list to write (.tsv or .csv).")],
    level: Annotated[
        float | None, opt("--level", help="Interval level whose width counts.", default_value=0.9)
    ] = None,
) -> None:
    """Rank groups by how much sequencing them would reduce uncertainty; write the top --budget."""
    from ..report.console import print_suggestions
    from ..uncertainty import suggest_file

    print_suggestions(suggest_file(summary, budget, out, level), out, console, err_console)
