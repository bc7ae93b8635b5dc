"""Command-line interface: one subcommand per stage, each a thin wrapper over a library function
(parse the flags, call it, print what it returns).

Bad input raises :class:`phenoseq.errors.InputError`; :func:`main` prints it as one line on stderr
and exits with code 2 (no traceback). Commands import their library modules when they run, so
``phenoseq --help`` and ``--version`` start quickly.
"""

from __future__ import annotations

import sys
import warnings
from typing import Annotated

import typer

from .._version import __version__
from ..errors import InputError
from . import _data, _evaluate, _model  # noqa: F401 (registers the commands)
from ._app import app, err_console
from ._options import opt


def _version(value: bool) -> None:
    if value:
        print(f"phenoseq {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, opt("--version", help="Print the version and exit.",
                       callback=_version, is_eager=True)] = False,
) -> None:  # fmt: skip
    """Predicted single-cell transcriptomes from Cell Painting morphology."""


def _show_warning(default):
    def show(message, category, filename, lineno, file=None, line=None):
        if "phenoseq" not in str(filename):
            return default(message, category, filename, lineno, file, line)
        err_console.print(f"[yellow]warning:[/] {message}", soft_wrap=True, highlight=False)

    return show


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: bad input is one line on stderr and exit code 2; PhenoSeq's
    own warnings are one ``warning:`` line each."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("default", category=UserWarning, module=r"phenoseq\.")
            warnings.showwarning = _show_warning(warnings.showwarning)
            app(args=argv, prog_name="phenoseq")
    except SystemExit as exc:  # click exits 0 after success; callers (and tests) get a return
        if exc.code not in (0, None):
            raise
    except InputError as exc:
        err_console.print(f"error: {exc}", soft_wrap=True, highlight=False, markup=False)
        sys.exit(2)


__all__ = ["app", "main"]
