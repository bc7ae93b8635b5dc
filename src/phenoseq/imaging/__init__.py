"""Cell Painting images -> per-cell morphology (``phenoseq featurize``; docs/imaging.md)."""

from .featurize import FeaturizeConfig, featurize, featurize_field, featurize_images, find_fields
from .fields import (
    CHANNELS,
    Field,
    discover_fields,
    fields_from_loaddata,
    parse_channel_map,
    read_field,
)
from .measure import crops, measure_cp, measure_fast
from .segment import SegmentConfig, labels_from_outlines, object_f1, segment

__all__ = [
    "CHANNELS",
    "FeaturizeConfig",
    "Field",
    "SegmentConfig",
    "crops",
    "discover_fields",
    "featurize",
    "featurize_field",
    "featurize_images",
    "fields_from_loaddata",
    "find_fields",
    "labels_from_outlines",
    "measure_cp",
    "measure_fast",
    "object_f1",
    "parse_channel_map",
    "read_field",
    "segment",
]
