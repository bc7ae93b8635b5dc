"""The one exception type for bad user input; the CLI turns it into a one-line message, exit 2."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input: names the file (when there is one), the problem and the fix.

    Parameters
    ----------
    problem
        What is wrong, in one sentence.
    fix
        What the user should do about it.
    path
        The offending file or folder, if any.
    """

    def __init__(self, problem: str, fix: str = "", path: str | Path | None = None):
        self.problem, self.fix, self.path = problem, fix, path
        where = f"{path}: " if path is not None else ""
        tail = f" Fix: {fix}" if fix else ""
        super().__init__(f"{where}{problem}{tail}")
