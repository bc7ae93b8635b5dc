"""Checks shared by the readers; each raises :class:`InputError` naming the problem and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError


def require_path(path: str | Path) -> Path:
    """The path as a :class:`Path`, or an error if it does not exist."""
    path = Path(path)
    if not path.exists():
        raise InputError("does not exist.", "check the path", path)
    return path


def check_nonempty(n_rows: int, source: str | Path) -> None:
    if n_rows == 0:
        raise InputError("has 0 rows.", "pass a file with at least one cell or profile", source)


def check_unique_ids(ids: pd.Index, source: str | Path) -> None:
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError(
            f"{len(dup)} duplicated cell id(s), e.g. {list(dup.unique()[:3])}.",
            "make ids unique (e.g. adata.obs_names_make_unique())",
            source,
        )


def require_genes(var_names: pd.Index, genes: list[str], what: str = "expression") -> None:
    """Every gene of ``genes`` (the model's) must be a column of ``var_names``."""
    present = set(var_names)
    missing = [g for g in genes if g not in present]
    if missing:
        raise InputError(
            f"{what} lacks {len(missing)} of the model's {len(genes)} genes, e.g. {missing[:3]}.",
            "use expression with the training genes (the same ids in var_names)",
        )


def _values(x: np.ndarray | sp.spmatrix) -> np.ndarray:
    """The stored values of a dense or sparse matrix (zeros of sparse matrices are implicit)."""
    return x.data if sp.issparse(x) else np.asarray(x).ravel()


def check_counts(x: np.ndarray | sp.spmatrix, source: str | Path) -> None:
    """Counts must be finite, non-negative, integer-valued, and no cell may be all zero."""
    v = _values(x)
    hint = "or declare --expression-kind continuous if these are not raw counts"
    if not np.isfinite(v).all():
        raise InputError(
            f"{int((~np.isfinite(v)).sum())} NaN/inf value(s) in the counts.",
            f"remove or fix those cells, {hint}",
            source,
        )
    if (v < 0).any():
        raise InputError(
            f"{int((v < 0).sum())} negative value(s) in the counts (min {v.min():g}).",
            f"pass raw UMI counts (e.g. --layer counts), {hint}",
            source,
        )
    frac = v != np.round(v)
    if frac.any():
        raise InputError(
            f"{int(frac.sum())} non-integer value(s) in the counts (e.g. {v[frac][0]:g}).",
            f"pass raw integer counts (e.g. --layer counts), {hint}",
            source,
        )
    totals = np.asarray(x.sum(axis=1)).ravel()
    if (totals == 0).any():
        raise InputError(
            f"{int((totals == 0).sum())} cell(s) of {len(totals)} have zero total counts.",
            "filter them first (scanpy.pp.filter_cells(adata, min_counts=1))",
            source,
        )


def check_continuous(x: np.ndarray | sp.spmatrix, source: str | Path) -> None:
    """Continuous profiles must be finite."""
    v = _values(x)
    if not np.isfinite(v).all():
        raise InputError(
            f"{int((~np.isfinite(v)).sum())} NaN/inf value(s) in the expression values.",
            "impute or drop those cells/genes first",
            source,
        )
