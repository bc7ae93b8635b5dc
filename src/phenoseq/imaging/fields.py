"""Finding and reading Cell Painting fields: which files hold which channel of which field.

A *field* is one site of one well: five single-channel planes (DNA, ER, RNA, AGP, Mito). Files
come in three layouts, all resolved to :class:`Field` records before any pixel is read:

- one file per channel (TIFF, compressed TIFF, PNG; 8 or 16 bit), selected by a *channel map*
  ``DNA=TOKEN,...`` whose TOKEN is a regular expression (a plain substring is one) searched in
  the file name; files of one field share everything but the channel token, or the named groups
  ``plate``, ``well``, ``site`` of ``--pattern``;
- one multi-channel TIFF or zarr array per field, with integer TOKENs naming the plane;
- a CellProfiler LoadData CSV (``FileName_<name>`` / ``PathName_<name>`` / ``Metadata_*``).

Intensities are scaled to [0, 1] by the dtype's maximum (as CellProfiler does), so features of
8- and 16-bit data are on one scale.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")
IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
META_GROUPS = ("plate", "well", "site")


@dataclass(frozen=True)
class Field:
    """One field: its metadata and, per channel, a file (and plane index for stacks)."""

    metadata: dict[str, str]
    sources: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "metadata", normalize_metadata(self.metadata))

    @property
    def name(self) -> str:
        return "_".join(f"{v}" for v in self.metadata.values()) or "field"


def normalize_metadata(meta: dict[str, str]) -> dict[str, str]:
    """Lower-case keys; Opera-style ``row`` + ``col`` (numbers or a row letter) -> ``well``
    (``r03c03`` -> ``C03``), ordered plate, well, site, then the rest."""
    meta = {str(k).lower(): str(v) for k, v in meta.items()}
    col = meta.pop("col", None) or meta.pop("column", None)
    if "row" in meta and col is not None and "well" not in meta:
        row = meta.pop("row")
        r = int(row) if row.isdigit() else ord(row.upper()) - 64
        meta["well"] = f"{chr(64 + r)}{int(col):02d}"
    first = [k for k in ("plate", "well", "site") if k in meta]
    return {k: meta[k] for k in first + [k for k in meta if k not in first]}


def parse_channel_map(text: str | dict[str, str]) -> dict[str, str]:
    """``"DNA=ch5,ER=ch2,..."`` -> ``{"DNA": "ch5", ...}``; every Cell Painting channel once."""
    if isinstance(text, dict):
        pairs = dict(text)
    else:
        pairs = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            if "=" not in item:
                raise InputError(f"--channel-map entry '{item}' is not NAME=TOKEN.",
                                 "write e.g. DNA=ch5,ER=ch2,RNA=ch6,AGP=ch3,Mito=ch4")  # fmt: skip
            name, token = (s.strip() for s in item.split("=", 1))
            if name in pairs:
                raise InputError(f"--channel-map names channel {name} twice.",
                                 "give each channel once")  # fmt: skip
            pairs[name] = token
    lower = {c.lower(): c for c in CHANNELS}
    out = {}
    for name, token in pairs.items():
        canon = lower.get(name.lower())
        if canon is None:
            raise InputError(f"--channel-map has unknown channel '{name}'.",
                             f"use the Cell Painting channels {', '.join(CHANNELS)}")  # fmt: skip
        if not token:
            raise InputError(f"--channel-map gives channel {canon} an empty token.",
                             "give a substring or regex of that channel's file names")  # fmt: skip
        out[canon] = token
    missing = [c for c in CHANNELS if c not in out]
    if missing:
        raise InputError(f"--channel-map lacks channel(s) {', '.join(missing)}.",
                         "map all five: DNA, ER, RNA, AGP, Mito")  # fmt: skip
    return out


def _token_regex(token: str) -> re.Pattern:
    try:
        return re.compile(token)
    except re.error:
        return re.compile(re.escape(token))


def _is_index(token: str) -> bool:
    return token.strip().isdigit()


def discover_fields(
    images: str | Path, channel_map: str | dict[str, str], pattern: str | None = None
) -> list[Field]:
    """Every complete field under ``images`` (a folder, searched recursively, or a zarr store).

    Raises :class:`InputError` for a channel no file matches, a file two channels match, or a
    field with two files for one channel.
    """
    images = Path(images)
    cmap = parse_channel_map(channel_map)
    if not images.exists():
        raise InputError("does not exist.", "pass the folder that holds the images", images)
    if all(_is_index(t) for t in cmap.values()):
        return _stack_fields(images, cmap, pattern)
    if not images.is_dir():
        raise InputError("is not a folder of per-channel images.",
                         "pass the folder, or integer channel tokens for a stack",
                         images)  # fmt: skip
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError("holds no .tif/.tiff/.png files.", "pass the folder of the images",
                         images)  # fmt: skip
    meta_re = re.compile(pattern) if pattern else None
    regs = {c: _token_regex(t) for c, t in cmap.items()}
    fields: dict[tuple, dict] = {}
    unmatched: list[str] = []
    for path in files:
        rel = str(path.relative_to(images))
        hits = [(c, m) for c, r in regs.items() if (m := r.search(path.name))]
        if not hits:
            continue
        if len(hits) > 1:
            names = ", ".join(c for c, _ in hits)
            raise InputError(f"file name {path.name} matches the tokens of {names}.",
                             "make the --channel-map tokens specific", images)  # fmt: skip
        channel, m = hits[0]
        if meta_re is not None:
            mm = meta_re.search(rel)
            if mm is None:
                unmatched.append(path.name)
                continue  # not an image of this layout (e.g. a thumbnail)
            meta = {k: v for k, v in mm.groupdict().items() if v is not None}
            key = tuple(meta.items())
        else:
            stem = (path.name[: m.start()] + path.name[m.end() :]).rsplit(".", 1)[0]
            folder = str(path.parent.relative_to(images))
            meta = {"image": stem.strip("-_ ") if folder == "." else f"{folder}/{stem}"}
            key = (folder, path.name[: m.start()] + "{}" + path.name[m.end() :])
        entry = fields.setdefault(key, {"meta": meta, "sources": {}})
        if channel in entry["sources"]:
            other = entry["sources"][channel][0]
            raise InputError(
                f"channel {channel} is ambiguous: {Path(other).name} and {path.name} both match "
                f"'{cmap[channel]}' for one field.",
                "make the token specific (e.g. add the extension) or pass --pattern", images,
            )  # fmt: skip
        entry["sources"][channel] = (str(path), None)
    if meta_re is None and len(fields) > 1 and _one_file_per_channel(fields):
        merged = {c: s for e in fields.values() for c, s in e["sources"].items()}
        stems = [Path(s[0]).stem for s in merged.values()]
        common = os.path.commonprefix(stems).strip("-_ ") or "field"
        fields = {("",): {"meta": {"image": common}, "sources": merged}}
    missing = {c for c in CHANNELS if not any(c in e["sources"] for e in fields.values())}
    if missing and unmatched:
        raise InputError(
            f"{len(unmatched)} file(s) match a channel token but not --pattern (e.g. "
            f"{unmatched[0]}), leaving channel(s) {', '.join(sorted(missing))} without files.",
            "fix --pattern (it is searched in the path relative to --images)", images,
        )  # fmt: skip
    if missing:
        raise InputError(
            f"no file name matches the token of channel(s) {', '.join(sorted(missing))} "
            f"({', '.join(f'{c}={cmap[c]}' for c in sorted(missing))}).",
            "check --channel-map against the file names", images,
        )  # fmt: skip
    out = []
    for entry in fields.values():
        lacking = [c for c in CHANNELS if c not in entry["sources"]]
        if lacking:
            some = next(iter(entry["sources"].values()))[0]
            counts = ", ".join(f"{c} {sum(c in e['sources'] for e in fields.values())}"
                               for c in CHANNELS)  # fmt: skip
            raise InputError(
                f"the files do not group into complete fields: {Path(some).name} has no "
                f"{', '.join(lacking)} partner (files per channel: {counts}).",
                "make each token match one file per field (e.g. add the extension: w1.*\\.png) "
                "or pass --pattern with named groups plate, well, site", images,
            )  # fmt: skip
        out.append(Field(entry["meta"], dict(entry["sources"])))
    return out


def _one_file_per_channel(fields: dict) -> bool:
    """True when each channel occurs in exactly one partial field (one field, differing names)."""
    seen: dict[str, int] = {}
    for e in fields.values():
        for c in e["sources"]:
            seen[c] = seen.get(c, 0) + 1
    return all(v == 1 for v in seen.values())


def _stack_fields(images: Path, cmap: dict[str, str], pattern: str | None) -> list[Field]:
    """Fields of multi-channel files: a TIFF per field, or a zarr array ``(fields?, C, H, W)``."""
    planes = {c: int(t) for c, t in cmap.items()}
    if images.suffix == ".zarr" or (images / ".zgroup").exists() or (images / "zarr.json").exists():
        arr = _zarr_array(images)
        n = arr.shape[0] if arr.ndim == 4 else 1
        return [Field({"site": str(i)} if n > 1 else {},
                      {c: (f"{images}#{i if n > 1 else ''}", p) for c, p in planes.items()})
                for i in range(n)]  # fmt: skip
    files = [images] if images.is_file() else sorted(
        p for p in images.rglob("*") if p.suffix.lower() in (".tif", ".tiff"))  # fmt: skip
    meta_re = re.compile(pattern) if pattern else None
    out = []
    for path in files:
        meta = {}
        if meta_re is not None:
            mm = meta_re.search(path.name)
            if mm is None:
                continue
            meta = {k: v for k, v in mm.groupdict().items() if v is not None}
        out.append(
            Field(meta or {"site": path.stem}, {c: (str(path), p) for c, p in planes.items()})
        )
    if not out:
        raise InputError("holds no multi-channel .tif files.",
                         "pass per-channel tokens for single-channel files", images)  # fmt: skip
    return out


def _zarr_array(path: Path):
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a non-store
        raise InputError(f"cannot be opened as zarr ({exc}).", "pass a zarr store", path) from exc
    if hasattr(node, "shape"):
        arr = node
    else:
        arrays = [a for _, a in node.arrays() if a.ndim in (3, 4)]
        if len(arrays) != 1:
            raise InputError("zarr group must hold exactly one 3-d or 4-d image array.",
                             "pass the array's own path", path)  # fmt: skip
        arr = arrays[0]
    if arr.ndim not in (3, 4):
        raise InputError(f"zarr array has shape {arr.shape}; expected (C, H, W) or (N, C, H, W).",
                         "store fields as channel-first stacks", path)  # fmt: skip
    return arr


def fields_from_loaddata(
    csv: str | Path, channel_map: str | dict[str, str] | None = None
) -> list[Field]:
    """Fields of a CellProfiler LoadData CSV (``FileName_X``, ``PathName_X``, ``Metadata_*``).

    ``channel_map`` maps each Cell Painting channel to a LoadData name X (``DNA=OrigDNA``);
    without it, X is matched to the channel by name (``OrigDNA``, ``DNA``, case-insensitive).
    """
    csv = Path(csv)
    try:
        table = pd.read_csv(csv)
    except Exception as exc:
        raise InputError(f"cannot be read as CSV ({exc}).", "pass a LoadData CSV", csv) from exc
    names = [c[len("FileName_") :] for c in table.columns if c.startswith("FileName_")]
    if channel_map is None:
        pick = {}
        for ch in CHANNELS:
            hits = [n for n in names if n.lower() in (ch.lower(), "orig" + ch.lower())]
            if len(hits) != 1:
                raise InputError(f"LoadData has {len(hits)} columns for channel {ch} "
                                 f"(FileName_ columns: {names}).",
                                 "pass --channel-map DNA=<name>,... with the LoadData names",
                                 csv)  # fmt: skip
            pick[ch] = hits[0]
    else:
        pick = parse_channel_map(channel_map)
    out = []
    for ch, n in pick.items():
        if f"FileName_{n}" not in table.columns:
            raise InputError(f"LoadData has no FileName_{n} column (channel {ch}).",
                             f"use one of {names}", csv)  # fmt: skip
    for _, row in table.iterrows():
        meta = {c[len("Metadata_"):].lower(): str(row[c]) for c in table.columns
                if c.startswith("Metadata_")}  # fmt: skip
        sources = {}
        for ch, n in pick.items():
            folder = row.get(f"PathName_{n}", "")
            folder = csv.parent if pd.isna(folder) or folder == "" else Path(str(folder))
            path = folder if folder.is_absolute() else csv.parent / folder
            sources[ch] = (str(path / str(row[f"FileName_{n}"])), None)
        out.append(Field(meta, sources))
    return out


def read_plane(source: tuple[str, int | None]) -> np.ndarray:
    """One channel ``(H, W)`` float32 in [0, 1] (integer data divided by its dtype's maximum)."""
    path, plane = source
    store, sep, idx = path.rpartition("#")
    if sep and plane is not None and Path(store).is_dir():  # a zarr stack: "store#field"
        arr = _zarr_array(Path(store))
        data = np.asarray(arr[int(idx), plane] if idx else arr[plane])
    else:
        data = _read_file(Path(path))
        if plane is not None:
            data = _channel_plane(data, plane, Path(path))
    if data.size == 0:
        raise InputError("holds no image data (empty or corrupt file).",
                         "re-export or exclude this file", path)  # fmt: skip
    if data.ndim == 3 and data.shape[-1] in (3, 4) and plane is None:
        raise InputError(f"is an RGB image ({data.shape}); a channel file must be one plane.",
                         "export single-channel images", path)  # fmt: skip
    if data.ndim != 2:
        raise InputError(f"has shape {data.shape}; expected one 2-d plane.",
                         "use integer channel tokens for multi-channel files", path)  # fmt: skip
    return _to_unit(data, path)


def _read_file(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        import imageio.v3 as iio

        return iio.imread(path)
    except FileNotFoundError as exc:
        raise InputError("does not exist.", "check the image paths", path) from exc
    except Exception as exc:  # corrupt / truncated files raise many types
        raise InputError(f"cannot be read as an image ({type(exc).__name__}: {exc}).",
                         "re-export or exclude this file", path) from exc  # fmt: skip


def _channel_plane(data: np.ndarray, plane: int, path: Path) -> np.ndarray:
    """Plane ``plane`` of a stack, channels first ``(C, H, W)`` or last ``(H, W, C)``."""
    if data.ndim != 3:
        raise InputError(f"has shape {data.shape}; integer channel tokens need a 3-d stack.",
                         "use file-name tokens for single-channel files", path)  # fmt: skip
    axis = 0 if data.shape[0] < min(data.shape[1:]) else 2
    if plane >= data.shape[axis]:
        raise InputError(f"has {data.shape[axis]} channels; token {plane} is out of range.",
                         "check --channel-map", path)  # fmt: skip
    return np.take(data, plane, axis=axis)


def _to_unit(data: np.ndarray, path: str) -> np.ndarray:
    if np.issubdtype(data.dtype, np.integer):
        return (data.astype(np.float32) / np.iinfo(data.dtype).max).astype(np.float32)
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise InputError("holds NaN or infinite pixels.", "re-export the image", path)
    return data


def read_field(f: Field) -> np.ndarray:
    """The field's planes ``(5, H, W)`` float32 in Cell Painting order; shapes must agree."""
    planes = [read_plane(f.sources[c]) for c in CHANNELS]
    shapes = {p.shape for p in planes}
    if len(shapes) > 1:
        raise InputError(f"field {f.name}: channels differ in shape {sorted(shapes)}.",
                         "supply the five channels of one acquisition")  # fmt: skip
    return np.stack(planes)
