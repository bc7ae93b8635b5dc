"""The Typer application, the consoles every command prints to, and flags several share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ._options import opt

app = typer.Typer(
    name="phenoseq",
    help="Predicted single-cell transcriptomes from Cell Painting morphology.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: flags without type placeholders
)
console = Console()
err_console = Console(stderr=True)

Quiet = Annotated[bool, opt("--quiet", help="No progress bars.")]
Device = Annotated[
    str, opt("--device", help="auto (a GPU when PyTorch sees one) | cpu | cuda[:N].",
             default_value="auto")
]  # fmt: skip
ModelDir = Annotated[Path, opt("--model", help="Model directory from `phenoseq train`.")]
Platemap = Annotated[
    Path | None, opt("--platemap", help="Plate map TSV joined to the morphology by well.")
]
