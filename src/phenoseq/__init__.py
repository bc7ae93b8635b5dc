"""PhenoSeq: predicted single-cell transcriptomes from Cell Painting morphology.

The public API, loaded on first use (``import phenoseq`` itself imports neither torch nor
AnnData, so the command line starts quickly)::

    import phenoseq as ps
    model = ps.PhenoSeqModel.load("model/")
    cells = model.generate(morphology, n_cells=200)

Each name below lives in the module it is listed with; docs/architecture.md maps the package.
"""

from __future__ import annotations

from ._lazy import lazy_exports
from ._version import __version__

__getattr__, __dir__, __all__ = lazy_exports(globals(), {
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
})  # fmt: skip
__all__ = ["__version__", *__all__]
