"""Transforms of expression and feature matrices shared by training, uncertainty and evaluation:
library-size normalisation + log1p, per-group means (whole or block by block), row blocks of
(possibly on-disk) matrices, per-column moments and scalers.

One implementation each: the model's inputs, the evaluation space and the summaries all call
these, so training and scoring see the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anndata as ad
import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from .arrays import as_labels, as_matrix

#: rows validated (and later read) per block of a backed file
BLOCK_ROWS = 4096


def dense(x: np.ndarray | sp.spmatrix) -> np.ndarray:
    """A dense array of a dense or scipy-sparse matrix."""
    return np.asarray(x.toarray() if sp.issparse(x) else x)


def normalize_log1p(
    counts: np.ndarray | sp.spmatrix, target_sum: float = 1e4, dtype: type = np.float64
) -> np.ndarray:
    """``log1p(counts / total * target_sum)`` per cell, as scanpy's ``normalize_total`` + ``log1p``.

    Parameters
    ----------
    counts
        ``"n_cells n_genes"`` non-negative counts, dense or scipy sparse.
    target_sum
        Total every cell is scaled to before the log (1e4 as in DESIGN.md §4).
    dtype
        Floating dtype of the (dense) output.

    Returns
    -------
    ``"n_cells n_genes"`` dense array. A cell with zero total stays all zeros.
    """
    if target_sum <= 0:
        raise InputError(f"target_sum is {target_sum}; it must be positive.", "pass e.g. 1e4")
    if sp.issparse(counts):
        x = sp.csr_matrix(counts, dtype=np.float64)
        _check_nonnegative(as_matrix(x.data.reshape(-1, 1), "counts", min_rows=0))
        x = sp.diags(_scale(np.asarray(x.sum(axis=1)).ravel(), target_sum)) @ x
        return np.log1p(x.toarray()).astype(dtype, copy=False)
    x = as_matrix(counts, "counts", min_rows=0)
    _check_nonnegative(x)
    return np.log1p(x * _scale(x.sum(axis=1), target_sum)[:, None]).astype(dtype, copy=False)


def _check_nonnegative(values: np.ndarray) -> None:
    if (values < 0).any():
        raise InputError(
            f"{int((values < 0).sum())} negative count(s).",
            "pass raw (non-negative) counts, not log or scaled values",
        )


def _scale(totals: np.ndarray, target_sum: float) -> np.ndarray:
    """Per-cell factor ``target_sum / total``; 0 for empty cells so they stay zero."""
    out = np.zeros_like(totals, dtype=np.float64)
    np.divide(target_sum, totals, out=out, where=totals > 0)
    return out


def log1p_view(x: np.ndarray | sp.spmatrix, kind: str) -> np.ndarray:
    """The analysis view of expression values ``"n_cells n_genes"`` (float64): normalize_total
    1e4 + log1p for ``kind="counts"``, the values as they are for continuous/embedding kinds."""
    if kind == "counts":
        return normalize_log1p(x)
    return dense(x).astype(np.float64)


def pseudobulk(x: np.ndarray | sp.spmatrix, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean profile of every group.

    Parameters
    ----------
    x
        ``"n_cells n_genes"`` values, dense or scipy sparse (kept sparse while summing).
    groups
        ``"n_cells"`` group label of every row (compared as strings).

    Returns
    -------
    group_names
        ``"n_groups"`` sorted unique labels (str).
    means
        ``"n_groups n_genes"`` float64 mean of the rows of each group, in that order.
    """
    if not sp.issparse(x):
        x = as_matrix(x, "x")
    elif not np.isfinite(x.data).all():
        raise InputError("x has NaN/inf value(s).", "drop or impute those cells first")
    labels = as_labels(groups, x.shape[0], "groups")
    names, inverse = np.unique(labels, return_inverse=True)
    member = sp.csr_matrix(
        (np.ones(len(labels)), (inverse, np.arange(len(labels)))), shape=(len(names), len(labels))
    )
    sums = np.asarray((member @ x).toarray() if sp.issparse(x) else member @ x, dtype=np.float64)
    return names, sums / np.bincount(inverse)[:, None]


class GroupSums:
    """Per-group row sums (float64) accumulated over blocks of rows, for data too large to hold
    at once: :meth:`add` every block, then :meth:`means` (NaN for groups without rows)."""

    def __init__(self, n_groups: int, n_cols: int):
        self.sums, self.counts = np.zeros((n_groups, n_cols)), np.zeros(n_groups)

    def add(self, x: np.ndarray, groups: np.ndarray) -> None:
        """Rows ``x`` ``"n n_cols"`` of groups ``groups`` (integer indices; < 0 = skip)."""
        for g in np.unique(groups[groups >= 0]):  # rows usually come sorted: few per block
            rows = groups == g
            self.sums[g] += x[rows].sum(axis=0, dtype=np.float64)
            self.counts[g] += rows.sum()

    def means(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts[:, None]


def block_rows(n_cols: int) -> int:
    """Rows per block: ``BLOCK_ROWS``, fewer for wide matrices (a dense float32 block stays
    under 64 MB, so 36,000 genes read ~460 rows at a time)."""
    return int(max(64, min(BLOCK_ROWS, (64 << 20) // (4 * max(n_cols, 1)))))


def expression_blocks(
    adata: ad.AnnData, genes: list[str] | None = None, size: int | None = None
) -> Iterator[tuple[int, np.ndarray | sp.spmatrix]]:
    """``(first row, X[block][:, genes])`` for consecutive row blocks of ``adata`` (default
    :func:`block_rows` rows); a backed AnnData is read from disk one block at a time, so memory
    is bounded by a block."""
    cols = None if genes is None else adata.var_names.get_indexer(genes)
    size = size or block_rows(adata.n_vars)
    for lo in range(0, adata.n_obs, size):
        x = adata.X[lo : lo + size]
        yield lo, (x if cols is None else x[:, cols])


def column_moments(
    adata: ad.AnnData,
    rows: np.ndarray,
    view: Callable[[np.ndarray | sp.spmatrix], np.ndarray],
    genes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (population) variance of ``view(X)`` over the rows where ``rows`` is
    true, accumulated block by block in float64."""
    n, total, sq = 0, 0.0, 0.0
    for lo, x in expression_blocks(adata, genes):
        keep = rows[lo : lo + x.shape[0]]
        if keep.any():
            v = np.asarray(view(x[keep]), dtype=np.float64)
            n, total, sq = n + len(v), total + v.sum(axis=0), sq + (v * v).sum(axis=0)
    mean = total / max(n, 1)
    return mean, np.maximum(sq / max(n, 1) - mean * mean, 0.0)


def top_variable_genes(variance: np.ndarray, n_top: int) -> np.ndarray:
    """Indices of the ``n_top`` genes with the largest variance (of log1p), in original order."""
    return np.sort(np.argsort(-variance, kind="stable")[:n_top])


def scaler(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float32 ``(mean, std)`` scaler; the std of constant columns is set to 1."""
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


def fit_scaler(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of ``x`` ``"n_rows n_features"`` (see :func:`scaler`)."""
    return scaler(x.mean(axis=0), x.std(axis=0))
