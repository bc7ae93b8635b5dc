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
    metrics: Annotated[Path, opt("--metrics", help="metrics.json of `phenoseq evaluate`.")],
    out: Annotated[Path, opt("--out", help="Self-contained HTML report to write.")],
    figures: Annotated[
        Path | None, opt("--figures", help="Also write each plot as a PNG into this folder.")
    ] = None,
) -> None:
    """Write the HTML report (plots embedded) of an evaluation."""
    from ..report.html import write_report

    write_report(metrics, out, figures)
    console.print(f"report written to {out}" + (f" (PNGs in {figures})" if figures else ""))


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
