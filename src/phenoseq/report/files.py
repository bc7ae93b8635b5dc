"""``phenoseq report``: which report the given files make.

- ``--summary`` (a ``generate --summary`` output): the prediction report of unsequenced wells;
  with ``--metrics`` too, it also shows the evaluation's measured interval coverage.
- ``--metrics`` alone (``phenoseq evaluate``): the evaluation report.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .html import read_metrics, write_report
from .prediction import write_prediction_report


def write_report_files(
    out: str | Path,
    metrics: str | Path | None = None,
    summary: str | Path | None = None,
    generated: str | Path | None = None,
    budget: int = 12,
    genes: list[str] | None = None,
    figures: str | Path | None = None,
) -> str:
    """Write the report the inputs call for; returns which ("prediction" or "evaluation")."""
    if summary is None and metrics is None:
        fix = (
            "pass --summary S.h5ad (predictions of unsequenced wells) or --metrics "
            "metrics.json (an evaluation)"
        )
        raise InputError("nothing to report.", fix)
    if summary is None:
        if generated is not None or genes:
            raise InputError("--generated and --genes belong to the prediction report.",
                             "add --summary S.h5ad (the `generate --summary` output)")  # fmt: skip
        write_report(metrics, out, figures)
        return "evaluation"
    if figures is not None:
        raise InputError("--figures writes the evaluation report's plots.",
                         "drop --figures, or run `phenoseq report --metrics M.json --figures "
                         "DIR` without --summary")  # fmt: skip
    doc = read_metrics(metrics)[0] if metrics is not None else None
    write_prediction_report(summary, out, generated, budget, doc, genes)
    return "prediction"
