"""Feature-column inference for Cell Painting tables (pycytominer conventions)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._keys import COMPARTMENTS, META_PREFIX
from ..errors import InputError

# Compartment-prefixed columns that link objects rather than describe them: never features.
_LINKING = re.compile(
    r"_(Parent_|Children_|Number_Object_Number|ObjectNumber|ImageNumber|TableNumber)"
)
# Positional columns (where an object is, not what it looks like): excluded from raw CellProfiler
# output, but kept when a profile table (already feature-selected, e.g. by pycytominer) has them.
_POSITIONAL = re.compile(r"_(Location_|AreaShape_Center_|AreaShape_BoundingBoxM(in|ax)imum_)")


def infer_features(
    columns: Iterable[str],
    compartments: Sequence[str] = COMPARTMENTS,
    exclude_positional: bool = True,
) -> list[str]:
    """Feature columns by compartment prefix (``Cells_``, ``Cytoplasm_``, ``Nuclei_``).

    Linking columns (``*_Parent_*``, ``*_Children_*``, object numbers) are never features;
    positional ones (``*_Location_*``, ``*_AreaShape_Center_*``, bounding boxes) are excluded
    unless ``exclude_positional`` is False.
    """
    prefixes = tuple(f"{c}_" for c in compartments)
    return [
        c
        for c in columns
        if c.startswith(prefixes)
        and not _LINKING.search(c)
        and not (exclude_positional and _POSITIONAL.search(c))
    ]


def parse_feature_list(spec: str | Sequence[str] | None) -> list[str] | None:
    """Features given by the user: a list, a comma-separated string or ``@file`` (one per line)."""
    if spec is None or isinstance(spec, (list, tuple)):
        return list(spec) if spec is not None else None
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.is_file():
            raise InputError("feature list file does not exist.", "pass an existing file", path)
        return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    return [s.strip() for s in spec.split(",") if s.strip()]


def select_features(
    frame: pd.DataFrame,
    features: Sequence[str] | None,
    source: str | Path,
    exclude_positional: bool = True,
) -> list[str]:
    """Resolve the feature columns of ``frame``: the user's list if given, else inferred."""
    if features is not None:
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise InputError(
                f"{len(missing)} requested feature column(s) are absent, e.g. {missing[:3]}.",
                "check --features against the table's columns",
                source,
            )
        chosen = list(features)
    else:
        chosen = infer_features(frame.columns, exclude_positional=exclude_positional)
        if not chosen:
            raise InputError(
                "no feature columns found (expected names starting with "
                + "/".join(f"{c}_" for c in COMPARTMENTS)
                + ").",
                "pass --features COL1,COL2,... (or @file with one name per line)",
                source,
            )
    non_numeric = [c for c in chosen if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise InputError(
            f"{len(non_numeric)} feature column(s) are not numeric, e.g. {non_numeric[:3]}.",
            "exclude them with --features, or rename them with a Metadata_ prefix",
            source,
        )
    return chosen


def meta_columns(frame: pd.DataFrame, features: Sequence[str]) -> list[str]:
    """Every non-feature column, ``Metadata_*`` first."""
    feats = set(features)
    rest = [c for c in frame.columns if c not in feats]
    return [c for c in rest if c.startswith(META_PREFIX)] + [
        c for c in rest if not c.startswith(META_PREFIX)
    ]


def check_finite(x: np.ndarray, names: Sequence[str], what: str, source: str | Path) -> None:
    """Refuse NaN/inf in a dense ``"n_rows n_cols"`` matrix, naming a few offending columns."""
    bad = ~np.isfinite(x)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))[:3]]
        raise InputError(
            f"{int(bad.sum())} NaN/inf value(s) in {what} ({int(bad.any(axis=0).sum())} "
            f"column(s), e.g. {cols}).",
            "impute or drop them first (e.g. pycytominer feature_select with "
            "operation='drop_na_columns'), or leave those columns out with --features",
            source,
        )
