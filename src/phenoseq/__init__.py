"""PhenoSeq: predicted single-cell transcriptomes from Cell Painting morphology.

The public API, loaded on first use (``import phenoseq`` itself imports neither torch nor
AnnData, so the command line starts quickly)::

    import phenoseq as ps
    model = ps.PhenoSeqModel.load("model/")
    cells = model.generate(morphology, n_cells=200)

Each name below lives in the module it is listed with; docs/architecture.md maps the package.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_EXPORTS = {
    "InputConfig": "phenoseq.config", "SplitConfig": "phenoseq.config",
    "ModelConfig": "phenoseq.config", "DiffusionConfig": "phenoseq.config",
    "TrainConfig": "phenoseq.config", "SampleConfig": "phenoseq.config",
    "UncertaintyConfig": "phenoseq.config", "InputError": "phenoseq.errors",
    "load_paired": "phenoseq.data", "read_morphology": "phenoseq.data",
    "read_expression": "phenoseq.data", "pair_by_treatment": "phenoseq.data",
    "PhenoSeqModel": "phenoseq.model", "train_model": "phenoseq.model",
    "calibrate_model": "phenoseq.uncertainty", "summarize": "phenoseq.uncertainty",
    "suggest": "phenoseq.uncertainty", "evaluate": "phenoseq.evaluate.run",
    "write_report": "phenoseq.report.html", "simulate": "phenoseq.simulate",
    "featurize_images": "phenoseq.imaging",
}  # fmt: skip

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'phenoseq' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
