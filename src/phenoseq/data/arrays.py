"""Array checks shared by the transforms and the metrics; each raises :class:`InputError`
naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError


def as_matrix(x: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    """``x`` as a finite float64 ``"n d"`` array (sparse input is densified)."""
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    if x.ndim != 2:
        raise InputError(
            f"{name} has shape {x.shape}; expected a 2-D array (n_cells, n_features).",
            "reshape it, e.g. x.reshape(-1, 1) for a single feature",
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"{name} has dtype {x.dtype}; expected real numbers.", "cast it to float")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise InputError(
            f"{name} has {int((~np.isfinite(x)).sum())} NaN/inf value(s).",
            "drop or impute those cells before evaluating",
        )
    if x.shape[0] < min_rows:
        raise InputError(
            f"{name} has {x.shape[0]} row(s); this metric needs at least {min_rows}.",
            "pass more cells (or skip this group)",
        )
    return x


def as_vector(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a finite float64 1-D array."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"{name} has shape {x.shape}; expected a 1-D array.", "pass one vector")
    if not np.isfinite(x).all():
        raise InputError(
            f"{name} has {int((~np.isfinite(x)).sum())} NaN/inf value(s).",
            "drop those entries (e.g. genes) from both arguments",
        )
    return x


def same_shape(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape != b.shape:
        raise InputError(
            f"{names} have different shapes {a.shape} and {b.shape}.",
            "align them to the same cells/groups and genes first",
        )


def same_width(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise InputError(
            f"{names} have {a.shape[1]} and {b.shape[1]} columns.",
            "put both in the same feature space (same genes or the same PCs)",
        )


def as_labels(y: np.ndarray, n_rows: int, name: str) -> np.ndarray:
    """``y`` as a 1-D array of ``str`` labels with one entry per row."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise InputError(
            f"{name} has shape {y.shape}; expected one label per row ({n_rows}).",
            "pass one label per cell, in the same order as the rows",
        )
    if pd.isna(y).any():
        raise InputError(f"{name} has missing (NaN/None) labels.", "drop or label those cells")
    return y.astype(str)
