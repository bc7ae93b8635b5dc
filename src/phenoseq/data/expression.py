"""Expression readers: one AnnData per sequenced cell (or profile), genes in ``var``."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import _keys as K
from ..config import ExpressionKind
from ..errors import InputError
from .morphology import read_h5ad
from .transforms import BLOCK_ROWS
from .validate import check_continuous, check_counts, check_nonempty, check_unique_ids, require_path

#: ``read_expression(backed=None)`` keeps ``X`` on disk when its dense size exceeds this
BACKED_AUTO_BYTES = 4 << 30


def read_gct(path: Path) -> ad.AnnData:
    """Read a GCT 1.2/1.3 file (e.g. L1000) as AnnData ``"n_samples n_genes"``.

    Column (sample) metadata rows become ``obs``; row (gene) metadata columns become ``var``;
    ``var_names`` are gene symbols when unique (``pr_gene_symbol``), else the row ids.
    """
    try:
        with open(path) as fh:
            version = fh.readline().strip()
            dims = [int(v) for v in fh.readline().split("\t")]
        n_rows, n_cols = dims[0], dims[1]
        n_rmeta, n_cmeta = (dims[2], dims[3]) if version == "#1.3" else (1, 0)
        table = pd.read_csv(path, sep="\t", skiprows=2, low_memory=False)
    except Exception as exc:
        raise InputError(f"cannot be read as GCT ({exc}).", "check the file", path) from exc
    id_col = table.columns[0]
    row_meta_cols = list(table.columns[1 : 1 + n_rmeta]) if version == "#1.3" else []
    sample_cols = list(table.columns[1 + len(row_meta_cols) :])
    if len(sample_cols) != n_cols or len(table) != n_rows + n_cmeta:
        raise InputError("GCT dimensions do not match its header.", "re-export the file", path)
    cmeta = table.iloc[:n_cmeta].set_index(id_col)[sample_cols].T
    data = table.iloc[n_cmeta:]
    values = data[sample_cols].to_numpy(dtype=np.float64).T
    var = data[[id_col, *row_meta_cols]].astype(str).set_index(id_col)
    var.index.name = None
    symbols = var.get("pr_gene_symbol")
    if symbols is not None and symbols.is_unique:
        var = var.set_index(pd.Index(symbols.to_numpy(), name=None), drop=False)
    obs = cmeta.copy()
    obs.columns.name = None
    obs = obs.infer_objects()
    return ad.AnnData(X=values.astype(np.float32), obs=obs, var=var)


def read_expression(
    path: str | Path,
    *,
    kind: ExpressionKind = "counts",
    layer: str | None = None,
    obsm_key: str | None = None,
    backed: bool | None = None,
) -> ad.AnnData:
    """Read and validate expression into AnnData with the target values in ``X``.

    Parameters
    ----------
    path
        An ``.h5ad`` (or a GCT file, e.g. L1000, for ``kind="continuous"``).
    kind
        ``"counts"``: raw counts, validated as finite, non-negative, integer-valued, no all-zero
        cell (any dtype, dense or sparse). ``"continuous"``: finite values (log-expression,
        z-scores). Never auto-detected.
    layer
        Take the values from ``layers[layer]`` instead of ``X``.
    obsm_key
        Take an embedding target from ``obsm[obsm_key]`` (e.g. scGPT); validated as finite and
        recorded as kind ``"embedding"``.
    backed
        Keep ``X`` of an ``.h5ad`` on disk (``anndata`` backed mode: only ``obs``/``var`` are
        loaded; validation and training read blocks of rows), so memory does not grow with the
        number of cells. ``None`` (default): backed when the dense ``X`` would exceed 4 GiB.
        Not with ``layer`` or ``obsm_key``.

    Returns
    -------
    AnnData ``"n_cells n_genes"``; ``uns['phenoseq']`` records source and kind.
    """
    path = require_path(path)
    if kind not in ("counts", "continuous"):
        raise InputError(f"unknown expression kind '{kind}'.", "use counts or continuous")
    name = path.name.lower()
    if backed is None:
        backed = (
            name.endswith(".h5ad")
            and layer is None
            and obsm_key is None
            and (_dense_bytes(path) > BACKED_AUTO_BYTES)
        )
    if backed:
        return _read_backed(path, kind, layer, obsm_key)
    if name.endswith(".gct"):
        adata = read_gct(path)
    elif name.endswith(".h5ad"):
        adata = read_h5ad(path)
    else:
        raise InputError("unknown expression format.", "use an .h5ad (or .gct) file", path)
    check_nonempty(adata.n_obs, path)
    check_unique_ids(adata.obs_names, path)
    if layer is not None and obsm_key is not None:
        raise InputError("both --layer and --expression-obsm given.", "pass only one", path)
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(
                f"has no layer '{layer}' (layers: {list(adata.layers.keys())}).",
                "pass one of those to --layer, or drop it to use X",
                path,
            )
        adata = ad.AnnData(X=adata.layers[layer], obs=adata.obs, var=adata.var)
    elif obsm_key is not None:
        if obsm_key not in adata.obsm:
            raise InputError(
                f"obsm has no key '{obsm_key}' (has {list(adata.obsm.keys())}).",
                "pass one of those to --expression-obsm",
                path,
            )
        emb = np.asarray(adata.obsm[obsm_key], dtype=np.float32)
        names = pd.Index([f"{obsm_key}_{i}" for i in range(emb.shape[1])])
        adata = ad.AnnData(X=emb, obs=adata.obs, var=pd.DataFrame(index=names))
    stored_kind = "embedding" if obsm_key is not None else kind
    if stored_kind == "counts":
        check_counts(adata.X, path)
        adata.X = (
            sp.csr_matrix(adata.X, dtype=np.float32)
            if sp.issparse(adata.X)
            else (np.asarray(adata.X, dtype=np.float32))
        )
    else:
        check_continuous(adata.X, path)
    adata.uns[K.UNS] = _provenance(path, stored_kind)
    return adata


def _provenance(path: Path, kind: str) -> dict:
    return {"source": str(path), "modality": "expression", K.EXPRESSION_KIND: kind}


def _dense_bytes(path: Path) -> int:
    """``n_obs * n_vars * 4`` of an ``.h5ad`` from its header (0 when it cannot be read)."""
    try:
        with h5py.File(path, "r") as f:
            x = f["X"]
            shape = x.attrs["shape"] if isinstance(x, h5py.Group) else x.shape
            return int(shape[0]) * int(shape[1]) * 4
    except Exception:  # an unreadable file gets its clear error from the full reader
        return 0


def open_backed(path: str | Path) -> ad.AnnData:
    """An AnnData on ``path`` with ``X`` left on disk and only ``obs``, ``var`` and ``uns`` read.

    Unlike ``anndata.read_h5ad(backed="r")`` this does not read ``layers``, ``obsm``, ``obsp``
    (often as large as ``X``) into memory. ``X`` must be dense or CSR (rows are read in blocks;
    a CSC matrix would be read whole for every block)."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise InputError(
            f"cannot be opened as .h5ad ({type(exc).__name__}: {str(exc)[:120]}).",
            "check that the file is a complete AnnData .h5ad (re-export it)",
            path,
        ) from exc
    try:
        x = f["X"]
        if isinstance(x, h5py.Group) and x.attrs.get("encoding-type") != "csr_matrix":
            raise InputError(
                f"X is stored as {x.attrs.get('encoding-type')}; --backed reads rows.",
                "write X as CSR (adata.X = adata.X.tocsr(); adata.write_h5ad(...)) or use "
                "--in-memory",
                path,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = {k: ad.io.read_elem(f[k]) for k in ("obs", "var", "uns") if k in f}
            return ad.AnnData(filename=f, **parts)
    except InputError:
        f.close()
        raise
    except Exception as exc:
        f.close()
        raise InputError(
            f"cannot be read as .h5ad ({type(exc).__name__}: {str(exc)[:120]}).",
            "check that the file is a complete AnnData .h5ad (re-export it)",
            path,
        ) from exc


def _read_backed(path: Path, kind: str, layer: str | None, obsm_key: str | None) -> ad.AnnData:
    """Open an ``.h5ad`` with ``X`` left on disk and validate ``X`` block by block."""
    if not path.name.lower().endswith(".h5ad"):
        raise InputError("only an .h5ad can be read backed.", "convert it to .h5ad", path)
    if layer is not None or obsm_key is not None:
        raise InputError(
            "--backed reads X only (not --layer / --expression-obsm).",
            "write the target to X (adata.X = adata.layers[...]) or drop --backed",
            path,
        )
    if kind not in ("counts", "continuous"):
        raise InputError(f"unknown expression kind '{kind}'.", "use counts or continuous")
    adata = open_backed(path)
    check_nonempty(adata.n_obs, path)
    check_unique_ids(adata.obs_names, path)
    check = check_counts if kind == "counts" else check_continuous
    for lo in range(0, adata.n_obs, BLOCK_ROWS):
        try:
            check(adata.X[lo : lo + BLOCK_ROWS], path)
        except InputError as exc:
            raise InputError(f"rows {lo}-{min(lo + BLOCK_ROWS, adata.n_obs) - 1}: {exc.problem}",
                             exc.fix, path) from None  # fmt: skip
    adata.uns[K.UNS] = _provenance(path, kind)
    return adata
