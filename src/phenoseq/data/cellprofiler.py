"""CellProfiler per-compartment output: a folder of ``*_Cells.csv`` ... or a SQLite database.

Compartment tables are merged into one row per cell (pycytominer's ``SingleCells`` convention):
the Cytoplasm row links its Cells and Nuclei parents through ``Parent_Cells``/``Parent_Nuclei``
within an image (``ImageNumber``, plus ``TableNumber`` when present); well and site come from the
Image table.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .._keys import COMPARTMENTS, META_PREFIX
from ..errors import InputError

_TABLE_FILE = re.compile(
    r"^(?P<prefix>.*?)_?(?P<table>Cells|Cytoplasm|Nuclei|Image)\.(csv|csv\.gz|txt)$"
)
_IMAGE_META = ("Metadata_Plate", "Metadata_Well", "Metadata_Site")


def find_compartment_files(folder: Path) -> dict[str, dict[str, Path]]:
    """Group ``<prefix>_<Table>.csv`` files of a folder by prefix (one CellProfiler run each)."""
    runs: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        m = _TABLE_FILE.match(path.name)
        if m:
            runs.setdefault(m["prefix"], {})[m["table"]] = path
    return runs


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, low_memory=False)
    except Exception as exc:  # pandas raises many types for corrupt text
        raise InputError(
            f"cannot be read as CSV ({type(exc).__name__}: {exc}).", "check the file", path
        ) from exc


def _strip_prefix(frame: pd.DataFrame, comp: str) -> pd.DataFrame:
    """cytominer-database SQLite tables prefix columns with their compartment; CSVs do not."""
    pre = f"{comp}_"
    return frame.rename(columns=lambda c: c[len(pre) :] if c.startswith(pre) else c)


def _image_keys(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    return (
        ["TableNumber", "ImageNumber"]
        if all("TableNumber" in t.columns for t in tables.values())
        else ["ImageNumber"]
    )


def _prefixed(frame: pd.DataFrame, comp: str, keys: list[str]) -> pd.DataFrame:
    return frame.rename(columns={c: f"{comp}_{c}" for c in frame.columns if c not in keys})


def _link(
    base: pd.DataFrame, other: pd.DataFrame, parent_col: str, keys: list[str]
) -> pd.DataFrame:
    right = other.rename(columns={f"{parent_col.split('_Parent_')[1]}_ObjectNumber": parent_col})
    return base.merge(right, on=[*keys, parent_col], how="left", validate="many_to_one")


def merge_compartments(
    tables: Mapping[str, pd.DataFrame], image: pd.DataFrame | None, source: str | Path
) -> pd.DataFrame:
    """Merge compartment tables of one run into one prefixed row per cell.

    Parameters
    ----------
    tables
        ``{"Cells": df, "Cytoplasm": df, "Nuclei": df}`` (any non-empty subset), columns with or
        without the compartment prefix.
    image
        The Image table (or a LoadData-style CSV with ``ImageNumber`` and ``Metadata_*``), or None.
    """
    tables = {c: _strip_prefix(t, c) for c, t in tables.items()}
    keys = _image_keys(tables)
    for comp, t in tables.items():
        missing = [k for k in [*keys, "ObjectNumber"] if k not in t.columns]
        if missing:
            raise InputError(
                f"{comp} table lacks {missing}.", "export it with CellProfiler", source
            )
    base_comp = next(c for c in ("Cytoplasm", "Cells", "Nuclei") if c in tables)
    merged = _prefixed(tables[base_comp], base_comp, keys)
    for comp in COMPARTMENTS:
        if comp == base_comp or comp not in tables:
            continue
        parent_col = f"{base_comp}_Parent_{comp}"
        if parent_col not in merged.columns:
            raise InputError(
                f"cannot link {comp} to {base_comp}: {base_comp} has no Parent_{comp} column.",
                f"export {base_comp} with its Parent_{comp} relationship, or drop the {comp} table",
                source,
            )
        merged = _link(merged, _prefixed(tables[comp], comp, keys), parent_col, keys)
    merged.insert(0, "Metadata_ObjectNumber", merged[f"{base_comp}_ObjectNumber"])
    if image is not None:
        meta = [c for c in image.columns if c.startswith(META_PREFIX) and c not in keys]
        missing = [k for k in keys if k not in image.columns]
        if missing:
            raise InputError(f"Image table lacks {missing}.", "export the Image table", source)
        merged = merged.merge(
            image[keys + meta], on=keys, how="left", validate="many_to_one", indicator=True
        )
        orphans = merged["_merge"] == "left_only"
        if orphans.any():
            ids = merged.loc[orphans, keys].drop_duplicates().to_dict("records")[:3]
            raise InputError(
                f"{int(orphans.sum())} object(s) have no row in the Image table (image {ids}).",
                "pass the Image table of the same CellProfiler run",
                source,
            )
        merged = merged.drop(columns="_merge")
    return merged.rename(columns={k: f"Metadata_{k}" for k in keys})


def read_compartment_folder(folder: Path) -> pd.DataFrame:
    """Read a folder of per-compartment CellProfiler CSVs (several runs allowed)."""
    runs = find_compartment_files(folder)
    runs = {p: f for p, f in runs.items() if any(c in f for c in COMPARTMENTS)}
    if not runs:
        raise InputError(
            "folder holds no CellProfiler compartment CSVs (*_Cells.csv, *_Cytoplasm.csv, "
            "*_Nuclei.csv).",
            "point --morphology at such a folder, a table or an .h5ad",
            folder,
        )
    frames = []
    for prefix, files in runs.items():
        tables = {c: _read_csv(files[c]) for c in COMPARTMENTS if c in files}
        image = _read_csv(files["Image"]) if "Image" in files else None
        frame = merge_compartments(tables, image, folder / (prefix or "."))
        frame.insert(0, "Metadata_Source", prefix or folder.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def read_sqlite(path: Path) -> pd.DataFrame:
    """Read a CellProfiler/cytominer SQLite: compartment tables (merged) or one profile table."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        with con:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            lowered = {n.lower(): n for n in names}
            comps = {c: lowered[c.lower()] for c in COMPARTMENTS if c.lower() in lowered}
            if comps:
                tables = {
                    c: pd.read_sql_query(f'SELECT * FROM "{n}"', con) for c, n in comps.items()
                }
                img = lowered.get("image")
                image = pd.read_sql_query(f'SELECT * FROM "{img}"', con) if img else None
            elif len(names) == 1:
                return pd.read_sql_query(f'SELECT * FROM "{names[0]}"', con)
            else:
                raise InputError(
                    f"SQLite has tables {names}, none named Cells/Cytoplasm/Nuclei.",
                    "keep one profile table, or name the compartment tables Cells/Cytoplasm/Nuclei",
                    path,
                )
    except sqlite3.DatabaseError as exc:
        raise InputError(f"cannot be read as SQLite ({exc}).", "check the file", path) from exc
    finally:
        if "con" in locals():
            con.close()
    image = _strip_prefix(image, "Image") if image is not None else None
    return merge_compartments(tables, image, path)
