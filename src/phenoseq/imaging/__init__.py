"""Cell Painting images -> per-cell morphology (``phenoseq featurize``; docs/imaging.md).

Names load on first use (the measurement code imports scikit-image and Dask)."""

from __future__ import annotations

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(globals(), {
    "FeaturizeConfig": ".featurize", "featurize": ".featurize", "featurize_field": ".featurize",
    "featurize_images": ".featurize", "find_fields": ".featurize", "CHANNELS": ".fields",
    "Field": ".fields", "discover_fields": ".fields", "fields_from_loaddata": ".fields",
    "parse_channel_map": ".fields", "read_field": ".fields", "crops": ".measure",
    "measure_cp": ".measure", "measure_fast": ".measure", "SegmentConfig": ".segment",
    "labels_from_outlines": ".segment", "object_f1": ".segment", "segment": ".segment",
})  # fmt: skip
