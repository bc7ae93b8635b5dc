"""Chunked writers: ``.h5ad`` built row block by row block with h5py, and zarr crop stores.

Memory stays bounded by one chunk, whatever the number of cells: obs (small) is known up front,
``X`` and ``obsm`` grow as blocks arrive. The files follow the AnnData on-disk specification, so
:func:`anndata.read_h5ad` (also ``backed="r"``) reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr

_SPARSE_CHUNK = 1 << 17


def _encode(node: h5py.Group | h5py.Dataset, kind: str, version: str) -> None:
    node.attrs["encoding-type"] = kind
    node.attrs["encoding-version"] = version


def _concat(parts: Sequence[Any]) -> Any:
    if sp.issparse(parts[0]):
        return sp.vstack(parts, format="csr")
    return np.concatenate(parts, axis=0)


def rechunk(blocks: Iterable[tuple[Any, ...]], size: int) -> Iterator[tuple[Any, ...]]:
    """Regroup row blocks (tuples of arrays / CSR matrices with equal row counts) into chunks of
    exactly ``size`` rows (the last may be shorter)."""
    pending: list[tuple[Any, ...]] = []
    n = 0
    for block in blocks:
        pending.append(block)
        n += block[0].shape[0]
        while n >= size:
            merged = tuple(_concat(p) for p in zip(*pending, strict=True))
            yield tuple(m[:size] for m in merged)
            rest = tuple(m[size:] for m in merged)
            n -= size
            pending = [rest] if n else []
    if n:
        yield tuple(_concat(p) for p in zip(*pending, strict=True))


class H5adWriter:
    """Write an AnnData ``.h5ad`` incrementally.

    Parameters
    ----------
    path
        Output file.
    obs, var
        Row and column annotations; ``obs`` may gain columns through :meth:`append`.
    uns
        Unstructured metadata (plain dicts, lists, scalars, arrays).
    sparse
        ``X`` as CSR (counts) or dense float32 (features).
    obsm, layers
        Names and widths of dense ``obsm`` arrays / float32 ``layers`` filled block by block.
    sparse_layers
        Names of CSR float32 layers (e.g. the counts beside ``X``), filled block by block.
    compression
        h5py compression of the large datasets.
    """

    def __init__(
        self,
        path: str | Path,
        obs: pd.DataFrame,
        var: pd.DataFrame,
        uns: dict[str, Any],
        *,
        sparse: bool,
        obsm: dict[str, int] | None = None,
        layers: dict[str, int] | None = None,
        sparse_layers: tuple[str, ...] = (),
        compression: str | None = "gzip",
    ):
        self._f = h5py.File(path, "w")
        self._obs, self._n, self._p = obs, len(obs), len(var)
        self._sparse, self._sparse_layers, self._row = sparse, set(sparse_layers), 0
        self._extra: dict[str, list[np.ndarray]] = {}
        self._kw: dict[str, Any] = {"compression": compression} if compression else {}
        if compression == "gzip":
            self._kw["compression_opts"] = 4
        ad.io.write_elem(self._f, "var", var)
        ad.io.write_elem(self._f, "uns", uns)
        for key in ("varm", "obsp", "varp"):
            ad.io.write_elem(self._f, key, {})
        self._init_dense("obsm", obsm or {})
        self._init_dense("layers", layers or {})
        for name in sparse_layers:
            self._init_sparse(self._f["layers"], name)
        self._init_x()

    def _init_dense(self, name: str, widths: dict[str, int]) -> None:
        group = self._f.create_group(name)
        _encode(group, "dict", "0.1.0")
        for key, width in widths.items():
            ds = group.create_dataset(key, (self._n, width), np.float32, **self._dense_kw(width))
            _encode(ds, "array", "0.2.0")

    def _dense_kw(self, width: int) -> dict[str, Any]:
        rows = max(1, min(self._n, max(1, (1 << 20) // (4 * max(width, 1)))))
        return {"chunks": (rows, max(width, 1)), **self._kw} if self._n and width else {}

    def _init_x(self) -> None:
        if not self._sparse:
            _encode(
                self._f.create_dataset(
                    "X", (self._n, self._p), np.float32, **self._dense_kw(self._p)
                ),
                "array",
                "0.2.0",
            )
            return
        self._init_sparse(self._f, "X")

    def _init_sparse(self, parent: h5py.Group, name: str) -> None:
        g = parent.create_group(name)
        _encode(g, "csr_matrix", "0.1.0")
        g.attrs["shape"] = (self._n, self._p)
        kw = {"maxshape": (None,), "chunks": (_SPARSE_CHUNK,), **self._kw}
        g.create_dataset("data", (0,), np.float32, **kw)
        g.create_dataset("indices", (0,), np.int32, **kw)
        g.create_dataset("indptr", data=np.zeros(1, np.int64), **kw)

    def append(
        self,
        x: np.ndarray | sp.csr_matrix,
        obsm: dict[str, np.ndarray] | None = None,
        obs: dict[str, np.ndarray] | None = None,
        layers: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Write the next rows: ``x`` ``(n_rows, n_vars)``, matching ``obsm`` / ``layers`` rows
        and extra ``obs`` columns (added to obs when the file is closed)."""
        n = x.shape[0]
        if self._row + n > self._n:
            raise ValueError(f"more rows than obs ({self._row + n} > {self._n})")
        rows = slice(self._row, self._row + n)
        if self._sparse:
            self._append_sparse(self._f["X"], sp.csr_matrix(x))
        else:
            self._f["X"][rows] = np.asarray(x, dtype=np.float32)
        for key, value in (obsm or {}).items():
            self._f["obsm"][key][rows] = value
        for key, value in (layers or {}).items():
            if key in self._sparse_layers:
                self._append_sparse(self._f["layers"][key], sp.csr_matrix(value))
            else:
                self._f["layers"][key][rows] = value
        for key, value in (obs or {}).items():
            self._extra.setdefault(key, []).append(np.asarray(value))
        self._row += n

    def _append_sparse(self, g: h5py.Group, x: sp.csr_matrix) -> None:
        nnz0 = g["indptr"][-1]
        for key, values in (("data", x.data), ("indices", x.indices)):
            g[key].resize((nnz0 + len(values),))
            g[key][nnz0:] = values
        start = len(g["indptr"])
        g["indptr"].resize((start + x.shape[0],))
        g["indptr"][start:] = x.indptr[1:].astype(np.int64) + nnz0

    def close(self) -> None:
        """Check every row was written, write obs, close the file."""
        if self._f.id.valid:
            if self._row != self._n:
                self._f.close()
                raise ValueError(f"{self._row} rows written, obs has {self._n}")
            obs = self._obs.copy()
            for key, parts in self._extra.items():
                obs[key] = np.concatenate(parts)
            ad.io.write_elem(self._f, "obs", obs)
            _encode(self._f, "anndata", "0.1.0")
            self._f.close()

    def __enter__(self) -> H5adWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._f.close()


class CropWriter:
    """A zarr group ``images`` ``(n, 5, S, S)`` uint8 + ``labels`` ``(n, S, S)`` uint8, filled
    in row order."""

    def __init__(self, path: str | Path, n: int, n_channels: int, size: int, attrs: dict[str, Any]):
        self.group = zarr.open_group(str(path), mode="w")
        rows = max(1, min(n, 64))
        self.images = self.group.create_array(
            "images",
            shape=(n, n_channels, size, size),
            chunks=(rows, n_channels, size, size),
            dtype="uint8",
        )
        self.labels = self.group.create_array(
            "labels", shape=(n, size, size), chunks=(rows, size, size), dtype="uint8"
        )
        self.group.attrs.update(attrs)
        self._row = 0

    def append(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Write the next ``len(images)`` crops."""
        rows = slice(self._row, self._row + len(images))
        self.images[rows] = images
        self.labels[rows] = labels
        self._row += len(images)
