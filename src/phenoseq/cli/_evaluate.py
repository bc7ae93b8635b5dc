"""Commands that score and show results: evaluate, report, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from ..config import TrainConfig, default
from ._app import Device, ModelDir, Quiet, app, console
from ._options import opt


@app.command()
def evaluate(
    model: ModelDir,
    generated: Annotated[
        Path, opt("--generated", help="Generated cells (.h5ad) from `phenoseq generate`.")
    ],
    expression: Annotated[Path, opt("--expression", help="Real held-out expression (.h5ad).")],
    morphology: Annotated[
        Path, opt("--morphology", help="Real held-out morphology (any reader format).")
    ],
    out: Annotated[Path, opt("--out", help="metrics.json to write (plot data goes beside it).")],
    train_expression: Annotated[
        Path | None, opt("--train-expression", help="Training expression, if moved since training.")
    ] = None,
    train_morphology: Annotated[
        Path | None, opt("--train-morphology", help="Training morphology, if moved since training.")
    ] = None,
    seed: Annotated[
        int, opt("--seed", help="Seed of subsamples and baseline draws.", default_value=0)
    ] = 0,
    summary: Annotated[
        Path | None, opt("--summary", help="`generate --summary` output: score its intervals too.")
    ] = None,
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Score generated cells against real held-out cells, baselines and the split-half ceiling."""
    from ..evaluate.run import evaluate_files
    from ..report.console import print_evaluation

    ev = evaluate_files(model, generated, expression, morphology, out, train_expression,
                        train_morphology, seed=seed, progress=not quiet, summary=summary,
                        device=device)  # fmt: skip
    print_evaluation(ev.metrics, out, console)


@app.command()
def report(
    out: Annotated[Path, opt("--out", help="Self-contained HTML report to write.")],
    summary: Annotated[
        Path | None,
        opt("--summary", help="`generate --summary` output: the prediction report of its wells."),
    ] = None,
    metrics: Annotated[
        Path | None,
        opt(
            "--metrics",
            help="metrics.json of `phenoseq evaluate`: the evaluation report "
            "(with --summary: its measured coverage in the prediction report).",
        ),
    ] = None,
    generated: Annotated[
        Path | None, opt("--generated", help="Generated cells: the model's provenance.")
    ] = None,
    budget: Annotated[
        int, opt("--budget", help="Wells in the 'sequence next' list.", default_value=12)
    ] = 12,
    genes: Annotated[
        str | None, opt("--genes", help="Genes to add to the plate map's picker (comma-separated).")
    ] = None,
    figures: Annotated[
        Path | None, opt("--figures", help="Evaluation report: also write each plot as a PNG here.")
    ] = None,
) -> None:
    """Write an HTML report: of predictions (--summary) or of an evaluation (--metrics)."""
    from ..report.files import write_report_files
    from ._options import csv

    kind = write_report_files(out, metrics, summary, generated, budget, list(csv(genes)), figures)
    console.print(f"{kind} report written to {out}" + (f" (PNGs in {figures})" if figures else ""))


@app.command()
def demo(
    out: Annotated[
        Path,
        opt("--out", help="Folder for everything the demo writes.", default_value="demo_output"),
    ] = Path("demo_output"),
    seed: Annotated[
        int, opt("--seed", help="Random seed (same seed, same numbers).", default_value=0)
    ] = 0,
    max_steps: Annotated[
        int | None,
        opt(
            "--max-steps",
            help="Diffusion training steps.",
            default_value=default(TrainConfig, "max_steps"),
        ),
    ] = None,
    ae_steps: Annotated[
        int | None,
        opt(
            "--ae-steps",
            help="Autoencoder training steps.",
            default_value=default(TrainConfig, "ae_steps"),
        ),
    ] = None,
    from_images: Annotated[
        bool,
        opt(
            "--from-images",
            help="Render every well and start from the images: featurize -> train -> ...",
        ),
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Run the pipeline on simulated data; print scores against the held-out replicate."""
    from ..demo import demo_config, run_demo
    from ..report.console import print_demo

    cfg = demo_config(seed, max_steps=max_steps, ae_steps=ae_steps, from_images=from_images)
    print_demo(run_demo(out, cfg, progress=not quiet), out, console)
