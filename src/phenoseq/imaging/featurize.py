"""Fields -> per-cell morphology AnnData (the first stage of the data flow; ``phenoseq featurize``).

Each field is read, segmented and measured independently (:func:`featurize_field`), so fields
run in parallel on Dask (a local cluster by default, any ``dask.distributed`` scheduler by
address) or in-process for small jobs. A field that fails (corrupt file, no cells) is reported
and skipped; the summary counts it.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import _keys as K
from ..config import read_settings
from ..data.morphology import join_platemap
from ..errors import InputError
from ..io import atomic_path, write_h5ad
from .fields import CHANNELS, Field, discover_fields, fields_from_loaddata, read_field
from .measure import crops, locations, measure_cp, measure_fast
from .segment import SegmentConfig, segment

FeatureSet = Literal["fast", "cp-measure"]
SMALL_JOB = 4  # fields at or below this run in-process (a Dask cluster takes 10-20 s to start)
PIXEL_SIZE_NOTE = "crops are in the field's own pixels (no resampling)"


@dataclass(frozen=True)
class FeaturizeConfig:
    """What :func:`featurize` does to each field (stored in the output's ``uns``)."""

    segment: SegmentConfig = field(default_factory=SegmentConfig)
    feature_set: FeatureSet = "fast"
    crop_size: int = 64
    min_cells: int = 1  # a field with fewer segmented cells counts as failed

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def load(cls, path: str | Path | None = None, **flags) -> FeaturizeConfig:
        """The settings of a TOML/JSON file (if any) with the flags that are not None over it."""
        settings = read_settings(path) if path is not None else {}
        return cls.from_dict(settings | {k: v for k, v in flags.items() if v is not None})

    @classmethod
    def from_dict(cls, d: dict) -> FeaturizeConfig:
        """From a flat or nested mapping: ``SegmentConfig`` keys at the top level or under
        ``segment``, plus ``feature_set``, ``crop_size``, ``min_cells``, ``nucleus_diameter``
        (which scales every segmentation size unless that size is also given)."""
        d = dict(d)
        seg = dict(d.pop("segment", {}) or {})
        seg_keys = set(SegmentConfig.__dataclass_fields__)
        seg |= {k: d.pop(k) for k in list(d) if k in seg_keys}
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(
                f"unknown featurize setting(s) {unknown}.",
                f"use {sorted(seg_keys | set(cls.__dataclass_fields__) - {'segment'})}",
            )
        if "features" in d:  # the name before 0.2 (now --feature-set: one meaning per flag)
            d["feature_set"] = d.pop("features")
        if d.get("feature_set", "fast") not in ("fast", "cp-measure"):
            raise InputError(f"unknown --feature-set '{d['feature_set']}'.",
                             "use fast or cp-measure")  # fmt: skip
        try:
            if "nucleus_diameter" in seg:
                base = SegmentConfig.for_nucleus_diameter(float(seg.pop("nucleus_diameter")))
                segment = replace(base, **seg)
            else:
                segment = SegmentConfig(**seg)
        except TypeError as exc:
            raise InputError(f"bad segmentation setting ({exc}).", "check the config") from exc
        if segment.cell_channel not in CHANNELS:
            raise InputError(f"cell_channel '{segment.cell_channel}' is not a channel.",
                             f"use one of {', '.join(CHANNELS)}")  # fmt: skip
        return cls(segment=segment, **d)


def read_config(path: str | Path) -> dict:
    """A featurize config file (TOML, or JSON for a ``.json`` suffix) as a dict."""
    return read_settings(path)


@dataclass
class FieldResult:
    """One field's cells: obs + features ``frame``, ``crops`` and (optionally) the masks."""

    name: str
    frame: pd.DataFrame | None = None
    crops: np.ndarray | None = None
    masks: tuple[np.ndarray, np.ndarray] | None = None
    error: str | None = None


def _meta_columns(meta: dict[str, str]) -> dict[str, str]:
    """Field metadata (normalised by :class:`Field`) as ``Metadata_*`` columns."""
    return {f"Metadata_{k[:1].upper()}{k[1:]}": v for k, v in meta.items()}


def featurize_field(f: Field, cfg: FeaturizeConfig, keep_masks: bool = False) -> FieldResult:
    """Read, segment and measure one field; every failure becomes ``FieldResult.error``."""
    try:
        image = read_field(f)
        nuclei, cells, image = segment(image, cfg.segment)
        measure = measure_cp if cfg.feature_set == "cp-measure" else measure_fast
        frame = measure(image, nuclei, cells)
        if len(frame) < cfg.min_cells:
            return FieldResult(f.name, error=f"{len(frame)} cells segmented "
                               f"(min_cells={cfg.min_cells})")  # fmt: skip
        loc = locations(nuclei, frame["ObjectNumber"].to_numpy())
        obs = pd.DataFrame({k: [v] * len(frame) for k, v in _meta_columns(f.metadata).items()})
        obs["Metadata_Field"] = f.name
        obs["Metadata_ObjectNumber"] = frame.pop("ObjectNumber").to_numpy()
        obs = pd.concat([obs, loc], axis=1)
        centers = loc[["Nuclei_Location_Center_Y", "Nuclei_Location_Center_X"]].to_numpy()
        cut = crops(image, centers, cfg.crop_size).astype(np.float16)
        return FieldResult(f.name, pd.concat([obs, frame], axis=1), cut,
                           (nuclei, cells) if keep_masks else None)  # fmt: skip
    except InputError as exc:
        return FieldResult(f.name, error=str(exc))
    except Exception as exc:  # isolate the field: report it, keep the run going
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return FieldResult(f.name, error=f"{type(exc).__name__}: {exc} "
                           f"({Path(last.filename).name}:{last.lineno})")  # fmt: skip


def _map_fields(
    fn: Callable[[Field], FieldResult],
    fields: Sequence[Field],
    scheduler: str | None,
    n_workers: int | None,
    progress: bool,
) -> Iterable[FieldResult]:
    """``fn`` over ``fields`` in-process (small jobs, ``scheduler="inprocess"``) or on Dask."""
    bar = tqdm(total=len(fields), desc="featurize", unit="field", disable=not progress)
    if scheduler == "inprocess" or (scheduler is None and len(fields) <= SMALL_JOB):
        for f in fields:
            yield fn(f)
            bar.update()
        bar.close()
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise InputError(
            "parallel featurize needs dask[distributed].",
            "pip install 'dask[distributed]', or --scheduler inprocess",
        ) from exc
    cluster = None
    if scheduler in (None, "local"):
        n = n_workers or max(1, min(len(fields), os.cpu_count() or 1))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None)  # fmt: skip
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc}).",
                "start it (dask scheduler) or drop --scheduler",
            ) from exc
    try:
        futures = client.map(fn, list(fields), pure=False)
        for fut in as_completed(futures):
            yield fut.result()
            fut.release()
            bar.update()
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()


def featurize(
    fields: Sequence[Field],
    config: FeaturizeConfig | None = None,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
    on_crops: Callable[[np.ndarray], None] | None = None,
    on_masks: Callable[[str, np.ndarray, np.ndarray], None] | None = None,
) -> ad.AnnData:
    """Per-cell morphology of ``fields``: AnnData ``"n_cells n_features"``.

    ``obs``: ``Metadata_*`` of the field (plate, well, site ...), ``Metadata_Field``,
    ``Metadata_ObjectNumber``, ``Nuclei_Location_Center_X/Y``, ``Metadata_CropIndex`` (row in
    the crops written through ``on_crops``). ``uns['phenoseq']['featurize']``: the config, the
    fields done and the failed fields with their errors. Fields run in a fixed order, so the
    output does not depend on the scheduler.
    """
    cfg = config or FeaturizeConfig()
    if not fields:
        raise InputError("no fields to featurize.", "check --images / --loaddata")
    order = {f.name: i for i, f in enumerate(fields)}
    if len(order) != len(fields):
        raise InputError("two fields share one name (plate/well/site).",
                         "give --pattern groups that identify each field")  # fmt: skip
    keep = on_masks is not None
    results: dict[str, FieldResult] = {}
    for res in _map_fields(lambda f: featurize_field(f, cfg, keep), fields, scheduler,
                           n_workers, progress):  # fmt: skip
        results[res.name] = res
    frames, failed, offset = [], {}, 0
    for name in sorted(results, key=order.get):
        res = results[name]
        if res.error is not None:
            failed[name] = res.error
            continue
        res.frame.insert(0, "Metadata_CropIndex", np.arange(offset, offset + len(res.frame)))
        offset += len(res.frame)
        frames.append(res.frame)
        if on_crops is not None:
            on_crops(res.crops)
        if on_masks is not None:
            on_masks(name, *res.masks)
    if not frames:
        first = next(iter(failed.items()))
        raise InputError(f"every field failed ({len(failed)}); the first, {first[0]}: {first[1]}",
                         "check the channel map and the segmentation settings")  # fmt: skip
    table = pd.concat(frames, ignore_index=True)
    feats = [c for c in table.columns if not c.startswith("Metadata_") and "_Location_" not in c]
    obs = table.drop(columns=feats)
    obs.index = [f"cell{i}" for i in range(len(obs))]
    x = table[feats].to_numpy(np.float32)
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    out = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(feats)))
    out.uns[K.UNS] = {
        "modality": "morphology",
        "featurize": {"config": cfg.to_dict(), "n_fields": len(fields),
                      "n_fields_done": len(frames), "failed_fields": failed,
                      "crop_size": cfg.crop_size, "crop_note": PIXEL_SIZE_NOTE},
    }  # fmt: skip
    return out


def find_fields(
    images: str | Path | None = None,
    channel_map: str | None = None,
    pattern: str | None = None,
    loaddata: str | Path | None = None,
) -> list[Field]:
    """Fields from an image folder + channel map, or from a LoadData CSV."""
    if loaddata is not None:
        return fields_from_loaddata(loaddata, channel_map)
    if images is None or channel_map is None:
        raise InputError("featurize needs --images and --channel-map (or --loaddata).",
                         "pass e.g. --images DIR --channel-map DNA=ch5,ER=ch2,RNA=ch6,AGP=ch3,"
                         "Mito=ch4")  # fmt: skip
    return discover_fields(images, channel_map, pattern)


def featurize_images(
    out: str | Path,
    images: str | Path | None = None,
    channel_map: str | None = None,
    *,
    pattern: str | None = None,
    loaddata: str | Path | None = None,
    platemap: str | Path | None = None,
    config: FeaturizeConfig | None = None,
    save_masks: str | Path | None = None,
    save_crops: bool = True,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
) -> ad.AnnData:
    """The library function ``phenoseq featurize`` wraps: find fields, featurize, write.

    Writes ``out`` (.h5ad) and, with ``save_crops``, ``<out>.crops.zarr`` (array ``crops``
    ``(n_cells, 5, size, size)`` float16 in [0, 1], row ``Metadata_CropIndex``); with
    ``save_masks``, ``<field>_nuclei.tiff`` and ``<field>_cells.tiff`` label images there.
    Every output appears only when complete.
    """

    out = Path(out)
    if out.suffix != ".h5ad":
        raise InputError("--out must end in .h5ad.", "e.g. --out morphology.h5ad", out)
    fields = find_fields(images, channel_map, pattern, loaddata)
    crops_path = out.with_name(out.stem + ".crops.zarr")
    with _crop_writer(crops_path if save_crops else None, config) as on_crops, \
            _mask_writer(save_masks) as on_masks:  # fmt: skip
        adata = featurize(fields, config, scheduler=scheduler, n_workers=n_workers,
                          progress=progress, on_crops=on_crops, on_masks=on_masks)  # fmt: skip
        if platemap is not None:
            adata.obs = join_platemap(adata.obs, platemap)
        adata.uns[K.UNS]["source"] = str(loaddata or images)
        write_h5ad(adata, out)
    return adata


@contextmanager
def _crop_writer(path: Path | None, config: FeaturizeConfig | None):
    """Yield an ``append(block)`` onto a zarr array built in a temporary folder that moves into
    place on success (or ``None`` without ``path``)."""
    if path is None:
        yield None
        return
    import zarr

    s = (config or FeaturizeConfig()).crop_size
    with atomic_path(path, is_dir=True) as tmp:
        arr = zarr.create_array(store=str(tmp), name="crops", shape=(0, 5, s, s),
                                chunks=(256, 5, s, s), dtype="float16")  # fmt: skip
        yield lambda block: arr.append(block, axis=0) if len(block) else None


@contextmanager
def _mask_writer(folder: str | Path | None):
    """Yield a ``write(name, nuclei, cells)`` of label TIFFs into a folder that appears only on
    success (or ``None`` without ``folder``)."""
    if folder is None:
        yield None
        return
    import tifffile

    with atomic_path(folder, is_dir=True) as tmp:

        def write(name: str, nuclei: np.ndarray, cells: np.ndarray) -> None:
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
            for kind, labels in (("nuclei", nuclei), ("cells", cells)):
                tifffile.imwrite(tmp / f"{safe}_{kind}.tiff", labels.astype(np.uint32),
                                 compression="zlib")  # fmt: skip

        yield write
