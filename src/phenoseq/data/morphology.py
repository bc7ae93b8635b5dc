"""Morphology readers: one AnnData per imaged cell (or well profile), features in ``X``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .. import _keys as K
from ..errors import InputError
from .cellprofiler import read_compartment_folder, read_sqlite
from .features import check_finite, meta_columns, select_features
from .validate import check_nonempty, check_unique_ids, require_path

_TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".parquet", ".pq")
_SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
_ID_COLUMN = "Metadata_Cell_ID"
# parts of a default row id, in order; pycytominer's Metadata_cell_id is the cell *line*, not an id
_ID_PARTS = (
    "Metadata_Source",
    "Metadata_Plate",
    "Metadata_Well",
    "Metadata_Site",
    "Metadata_ImageNumber",
    "Metadata_ObjectNumber",
)


def read_h5ad(path: Path) -> ad.AnnData:
    """Read an ``.h5ad`` file, turning low-level failures into a clear :class:`InputError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-layout warnings of old files are not ours
            return ad.read_h5ad(path)
    except Exception as exc:
        raise InputError(
            f"cannot be read as .h5ad ({type(exc).__name__}: {str(exc)[:120]}).",
            "check that the file is a complete AnnData .h5ad (re-export it)",
            path,
        ) from exc


def read_table(path: Path) -> pd.DataFrame:
    """Read a CellProfiler/pycytominer profile table (csv[.gz], tsv, parquet or SQLite)."""
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith(_SQLITE_SUFFIXES):
            return read_sqlite(path)
        sep = "\t" if ".tsv" in name else ","
        return pd.read_csv(path, sep=sep, low_memory=False)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"cannot be read as a table ({type(exc).__name__}: {str(exc)[:120]}).",
            "check the file is a complete csv/csv.gz/tsv/parquet/SQLite table",
            path,
        ) from exc


def frame_to_anndata(
    frame: pd.DataFrame,
    features: Sequence[str] | None,
    source: str | Path,
    exclude_positional: bool = False,
) -> ad.AnnData:
    """A per-row profile table to AnnData: features in ``X`` (float32), everything else in obs.

    ``exclude_positional`` drops ``*_Location_*``/centre/bounding-box columns from the inferred
    features (right for raw CellProfiler output; profile tables keep their selection).
    """
    check_nonempty(len(frame), source)
    feats = select_features(frame, features, source, exclude_positional)
    x = frame[feats].to_numpy(dtype=np.float64)
    check_finite(x, feats, "morphology features", source)
    obs = frame[meta_columns(frame, feats)].copy()
    obs.index = _row_ids(obs)
    check_unique_ids(obs.index, source)
    obs = tidy_obs(obs)
    return ad.AnnData(X=x.astype(np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(feats)))


def _row_ids(obs: pd.DataFrame) -> pd.Index:
    """``Metadata_Cell_ID`` if given, else plate/well/site/object parts, else the row number."""
    if _ID_COLUMN in obs.columns:
        return pd.Index(obs[_ID_COLUMN].astype(str).to_numpy())
    parts = [c for c in _ID_PARTS if c in obs.columns]
    if not parts:
        return pd.Index([f"row{i}" for i in range(len(obs))])
    ids = obs[parts].astype(str).agg(":".join, axis=1)
    if ids.duplicated().any():  # e.g. several profiles per well: keep them apart by row number
        ids = ids + ":" + pd.Series(range(len(ids)), index=ids.index).astype(str)
    return pd.Index(ids.to_numpy())


def tidy_obs(obs: pd.DataFrame) -> pd.DataFrame:
    """Make obs writable to h5ad: object columns to strings (mixed types break the writer)."""
    for c in obs.columns:
        if obs[c].dtype == object or isinstance(obs[c].dtype, pd.StringDtype):
            obs[c] = obs[c].astype(str).where(obs[c].notna(), "")
    return obs


def _from_h5ad(path: Path, obsm_key: str | None, features: Sequence[str] | None) -> ad.AnnData:
    adata = read_h5ad(path)
    check_nonempty(adata.n_obs, path)
    check_unique_ids(adata.obs_names, path)
    if obsm_key is not None:
        if obsm_key not in adata.obsm:
            raise InputError(
                f"obsm has no key '{obsm_key}' (has {list(adata.obsm.keys())}).",
                "pass one of those to --morphology-obsm",
                path,
            )
        x = np.asarray(adata.obsm[obsm_key], dtype=np.float64)
        names = [f"{obsm_key}_{i}" for i in range(x.shape[1])]
        adata = ad.AnnData(X=x, obs=adata.obs.copy(), var=pd.DataFrame(index=names))
    elif features is not None:
        missing = [f for f in features if f not in adata.var_names]
        if missing:
            raise InputError(
                f"{len(missing)} requested feature(s) are not in var_names, e.g. {missing[:3]}.",
                "check --features",
                path,
            )
        adata = adata[:, list(features)].copy()
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    check_finite(
        np.asarray(x, dtype=np.float64), list(adata.var_names), "morphology features", path
    )
    adata.X = np.asarray(x, dtype=np.float32)
    return adata


def read_morphology(
    path: str | Path,
    *,
    obsm_key: str | None = None,
    features: Sequence[str] | None = None,
    platemap: str | Path | None = None,
) -> ad.AnnData:
    """Read morphology into an AnnData with one row per cell (or well) and features in ``X``.

    Parameters
    ----------
    path
        An ``.h5ad`` (features in ``X``, or in ``obsm[obsm_key]``); a CellProfiler/pycytominer
        table (csv, csv.gz, tsv, parquet, SQLite); or a folder of per-compartment CellProfiler
        CSVs (``*_Cells.csv``, ``*_Cytoplasm.csv``, ``*_Nuclei.csv``, ``*_Image.csv``).
    obsm_key
        Take features from this ``obsm`` entry of an ``.h5ad`` (e.g. an image embedding).
    features
        Feature columns to use; default: inferred by compartment prefix.
    platemap
        A plate-map TSV/CSV joined by well (see :func:`join_platemap`).

    Returns
    -------
    AnnData ``"n_cells n_features"`` with float32 ``X``; ``uns['phenoseq']['source']`` = path.
    """
    path = require_path(path)
    if path.is_dir():
        adata = frame_to_anndata(read_compartment_folder(path), features, path, True)
    elif path.name.lower().endswith(".h5ad"):
        adata = _from_h5ad(path, obsm_key, features)
    elif path.name.lower().endswith(_SQLITE_SUFFIXES):
        frame = read_table(path)
        adata = frame_to_anndata(frame, features, path, "Metadata_ObjectNumber" in frame.columns)
    elif path.name.lower().endswith(_TABLE_SUFFIXES):
        adata = frame_to_anndata(read_table(path), features, path)
    else:
        raise InputError(
            "unknown morphology format.",
            "use .h5ad, .csv/.csv.gz/.tsv, .parquet, .sqlite, or a folder of CellProfiler CSVs",
            path,
        )
    if obsm_key is not None and not path.name.lower().endswith(".h5ad"):
        raise InputError("--morphology-obsm needs an .h5ad input.", "drop the flag", path)
    if platemap is not None:
        adata.obs = join_platemap(adata.obs, platemap)
    adata.uns[K.UNS] = {"source": str(path), "modality": "morphology"}
    return adata


_PLATEMAP_WELL = ("Metadata_Well", "well_position", "Metadata_well_position", "Well", "well")
_PLATEMAP_PLATE = ("Metadata_Plate", "plate", "Plate", "Metadata_plate")


def join_platemap(obs: pd.DataFrame, platemap: str | Path) -> pd.DataFrame:
    """Join plate-map columns by well, prefixing them with ``Metadata_`` (pycytominer style).

    A map with a plate column (``Metadata_Plate``, ``plate``) joins on plate and well, so one
    file can describe several plates. Columns the morphology already has are kept as they are.
    Every row's well must be in the map.
    """
    path = require_path(platemap)
    pm = read_table(path).astype(str)
    well_col = next((c for c in _PLATEMAP_WELL if c in pm.columns), None)
    if well_col is None:
        raise InputError(
            f"plate map has no well column (looked for {list(_PLATEMAP_WELL)}).",
            "add a well_position or Metadata_Well column",
            path,
        )
    if K.WELL not in obs.columns:
        raise InputError(
            f"morphology rows have no {K.WELL} column to join the plate map on.",
            "add Metadata_Well to the morphology (or its Image table)",
            path,
        )
    plate_col = next((c for c in _PLATEMAP_PLATE if c in pm.columns), None)
    renames = {well_col: K.WELL} | ({plate_col: K.PLATE} if plate_col else {})
    pm = pm.rename(columns=renames)
    pm = pm.rename(columns=lambda c: c if c.startswith(K.META_PREFIX) else K.META_PREFIX + c)
    keys = [K.WELL]
    if plate_col is not None:
        if K.PLATE not in obs.columns:
            raise InputError(f"plate map has a plate column but the morphology has no {K.PLATE}.",
                             "add Metadata_Plate (e.g. a plate group in --pattern) or drop the "
                             "plate column from the map", path)  # fmt: skip
        keys = [K.PLATE, K.WELL]
    if pm.duplicated(keys).any():
        raise InputError(f"plate map lists a {' + '.join(k[9:].lower() for k in keys)} twice.",
                         "keep one row per well (per plate)", path)  # fmt: skip
    pm = pm[keys + [c for c in pm.columns if c not in obs.columns and c not in keys]]
    left = obs[keys].astype(str).agg(" ".join, axis=1)
    right = pm[keys].agg(" ".join, axis=1)
    missing = sorted(set(left) - set(right))
    if missing:
        raise InputError(
            f"{len(missing)} morphology well(s) are not in the plate map, e.g. {missing[:3]}.",
            "use the plate map of this plate",
            path,
        )
    joined = pm.drop(columns=keys).set_axis(right.to_numpy()).loc[left.to_numpy()]
    joined.index = obs.index
    return pd.concat([obs, joined], axis=1)
