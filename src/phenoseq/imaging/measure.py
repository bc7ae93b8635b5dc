"""Per-cell measurements with CellProfiler-compatible names, and single-cell crops.

The default feature set is fast and vectorised (scikit-image ``regionprops`` plus a masked grey
co-occurrence matrix): for each compartment (``Nuclei``, ``Cells``, ``Cytoplasm`` = cell minus
nucleus) ``AreaShape_*`` and, per channel, ``Intensity_*`` and ``Texture_*`` features, named as
CellProfiler names them (``Cells_Intensity_MeanIntensity_DNA``,
``Nuclei_Texture_Contrast_RNA_3_00_8``), so pycytominer-style tooling and PhenoSeq's feature
inference treat both alike. ``cp-measure`` (CellProfiler's own measurement code as a library) is
the fidelity option: :func:`measure_cp`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import InputError
from .fields import CHANNELS

COMPARTMENTS = ("Nuclei", "Cells", "Cytoplasm")
SHAPE = ("Area", "Perimeter", "FormFactor", "Eccentricity", "Solidity", "Extent",
         "MajorAxisLength", "MinorAxisLength", "EquivalentDiameter")  # fmt: skip
INTENSITY = ("MeanIntensity", "StdIntensity", "IntegratedIntensity", "MinIntensity",
             "MaxIntensity", "MedianIntensity", "LowerQuartileIntensity",
             "UpperQuartileIntensity")  # fmt: skip
TEXTURE = ("Contrast", "Correlation", "AngularSecondMoment", "Entropy", "InverseDifferenceMoment")
TEXTURE_SCALE, TEXTURE_LEVELS = 3, 8


def compartments(nuclei: np.ndarray, cells: np.ndarray) -> dict[str, np.ndarray]:
    """Label images of the three compartments; label k is one cell in all three."""
    cyto = np.where(nuclei > 0, 0, cells)
    return {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": cyto}


def _shape(labels: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    from skimage import measure

    props = measure.regionprops_table(
        labels,
        properties=("label", "area", "perimeter", "eccentricity", "solidity", "extent",
                    "axis_major_length", "axis_minor_length", "equivalent_diameter_area"),
    )  # fmt: skip
    frame = pd.DataFrame(props).set_index("label").reindex(ids)
    area, perim = frame["area"].to_numpy(float), frame["perimeter"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        form = np.where(perim > 0, 4 * np.pi * area / perim**2, 0.0)
    return {
        "Area": area, "Perimeter": perim, "FormFactor": form,
        "Eccentricity": frame["eccentricity"].to_numpy(float),
        "Solidity": frame["solidity"].to_numpy(float), "Extent": frame["extent"].to_numpy(float),
        "MajorAxisLength": frame["axis_major_length"].to_numpy(float),
        "MinorAxisLength": frame["axis_minor_length"].to_numpy(float),
        "EquivalentDiameter": frame["equivalent_diameter_area"].to_numpy(float),
    }  # fmt: skip


def _intensity(labels: np.ndarray, plane: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Per-object intensity statistics, vectorised over objects by sorting pixels by label."""
    lab = labels.ravel()
    inside = lab > 0
    lab, val = lab[inside], plane.ravel()[inside].astype(np.float64)
    order = np.lexsort((val, lab))
    lab, val = lab[order], val[order]
    n_max = int(labels.max()) + 1
    count = np.bincount(lab, minlength=n_max).astype(float)
    total = np.bincount(lab, val, minlength=n_max)
    sq = np.bincount(lab, val * val, minlength=n_max)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    out = {k: np.zeros(len(ids)) for k in INTENSITY}
    c = count[ids]
    ok = c > 0
    s = start[ids][ok]
    cc = c[ok].astype(np.int64)

    def quantile(q: float) -> np.ndarray:  # linear interpolation, as numpy's default
        pos = q * (cc - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, cc - 1)
        frac = pos - lo
        return val[s + lo] * (1 - frac) + val[s + hi] * frac

    mean = total[ids][ok] / cc
    out["MeanIntensity"][ok] = mean
    out["StdIntensity"][ok] = np.sqrt(np.maximum(sq[ids][ok] / cc - mean**2, 0))
    out["IntegratedIntensity"][ok] = total[ids][ok]
    out["MinIntensity"][ok] = val[s]
    out["MaxIntensity"][ok] = val[s + cc - 1]
    out["MedianIntensity"][ok] = quantile(0.5)
    out["LowerQuartileIntensity"][ok] = quantile(0.25)
    out["UpperQuartileIntensity"][ok] = quantile(0.75)
    return out


def _texture(labels: np.ndarray, plane: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Haralick features of each object's grey co-occurrence at distance 3, angle 0.

    Like CellProfiler, the image is quantised to ``TEXTURE_LEVELS`` grey levels over its own
    range, and only pixel pairs with both pixels inside the object count.
    """
    d, q = TEXTURE_SCALE, TEXTURE_LEVELS
    lo, hi = float(plane.min()), float(plane.max())
    grey = np.clip(((plane - lo) / max(hi - lo, 1e-12) * q).astype(np.int64), 0, q - 1)
    a_lab, b_lab = labels[:, :-d], labels[:, d:]
    same = (a_lab == b_lab) & (a_lab > 0)
    idx = a_lab[same] * q * q + grey[:, :-d][same] * q + grey[:, d:][same]
    n_max = int(labels.max()) + 1
    glcm = np.bincount(idx, minlength=n_max * q * q).reshape(n_max, q, q)[ids].astype(float)
    glcm = glcm + glcm.transpose(0, 2, 1)  # symmetric, as CellProfiler (mahotas)
    total = glcm.sum(axis=(1, 2), keepdims=True)
    p = np.divide(glcm, total, out=np.zeros_like(glcm), where=total > 0)
    i, j = np.meshgrid(np.arange(q), np.arange(q), indexing="ij")
    mu_i = (p * i).sum(axis=(1, 2))
    mu_j = (p * j).sum(axis=(1, 2))
    sd_i = np.sqrt((p * (i - mu_i[:, None, None]) ** 2).sum(axis=(1, 2)))
    sd_j = np.sqrt((p * (j - mu_j[:, None, None]) ** 2).sum(axis=(1, 2)))
    cov = (p * (i - mu_i[:, None, None]) * (j - mu_j[:, None, None])).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(sd_i * sd_j > 0, cov / (sd_i * sd_j), 0.0)
        logp = np.where(p > 0, np.log2(np.where(p > 0, p, 1)), 0.0)
    return {
        "Contrast": (p * (i - j) ** 2).sum(axis=(1, 2)),
        "Correlation": corr,
        "AngularSecondMoment": (p**2).sum(axis=(1, 2)),
        "Entropy": -(p * logp).sum(axis=(1, 2)),
        "InverseDifferenceMoment": (p / (1 + (i - j) ** 2)).sum(axis=(1, 2)),
    }


def measure_fast(image: np.ndarray, nuclei: np.ndarray, cells: np.ndarray) -> pd.DataFrame:
    """The default features of every cell ``(n_cells, n_features)``, rows ordered by label.

    ``image`` is ``(5, H, W)`` in :data:`CHANNELS` order; ``cells`` label k holds nucleus k.
    Cells without cytoplasm pixels get zeros for their cytoplasm features.
    """
    ids = np.intersect1d(np.unique(nuclei[nuclei > 0]), np.unique(cells[cells > 0]))
    cols: dict[str, np.ndarray] = {}
    for comp, labels in compartments(nuclei, cells).items():
        present = np.isin(ids, np.unique(labels[labels > 0]))
        for k, v in _shape(labels, ids).items():
            cols[f"{comp}_AreaShape_{k}"] = np.where(present, np.nan_to_num(v), 0.0)
        for ch, plane in zip(CHANNELS, image, strict=True):
            for k, v in _intensity(labels, plane, ids).items():
                cols[f"{comp}_Intensity_{k}_{ch}"] = v
            for k, v in _texture(labels, plane, ids).items():
                cols[f"{comp}_Texture_{k}_{ch}_{TEXTURE_SCALE}_00_{TEXTURE_LEVELS}"] = v
    frame = pd.DataFrame(cols)
    frame.insert(0, "ObjectNumber", ids.astype(np.int64))
    return frame


def locations(nuclei: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    """``Nuclei_Location_Center_X/Y`` (column, row; pixels) of each nucleus in ``ids``."""
    from scipy import ndimage as ndi

    if not len(ids):
        return pd.DataFrame({"Nuclei_Location_Center_X": [], "Nuclei_Location_Center_Y": []})
    centers = np.asarray(ndi.center_of_mass(np.ones_like(nuclei), nuclei, ids), float)
    return pd.DataFrame({"Nuclei_Location_Center_X": centers[:, 1],
                         "Nuclei_Location_Center_Y": centers[:, 0]})  # fmt: skip


def crops(image: np.ndarray, centers_yx: np.ndarray, size: int = 64) -> np.ndarray:
    """``(n, 5, size, size)`` crops centred on each ``(y, x)``; zero outside the field."""
    half = size // 2
    padded = np.pad(image, ((0, 0), (half, half), (half, half)))
    out = np.empty((len(centers_yx), image.shape[0], size, size), image.dtype)
    for k, (y, x) in enumerate(np.floor(np.asarray(centers_yx) + 0.5).astype(int)):
        out[k] = padded[:, y : y + size, x : x + size]
    return out


def cp_name(compartment: str, column: str) -> str:
    """CellProfiler's name of a ``cp-measure`` column (``Intensity_MeanIntensity__DNA`` ->
    ``Cells_Intensity_MeanIntensity_DNA``; channel-free shape columns go under ``AreaShape``)."""
    base, _, ch = column.partition("__")
    if not ch:
        return f"{compartment}_AreaShape_{base}"
    head, *rest = base.split("_")
    if head in ("Granularity", "Location"):
        return f"{compartment}_{base}_{ch}"
    if head in ("Intensity", "RadialDistribution"):
        head, rest = f"{head}_{rest[0]}", rest[1:]
    else:  # texture: Contrast_3_00_256 -> Texture_Contrast_<ch>_3_00_256
        head = f"Texture_{head}"
    return "_".join([compartment, head, ch, *rest])


def measure_cp(image: np.ndarray, nuclei: np.ndarray, cells: np.ndarray) -> pd.DataFrame:
    """CellProfiler's own per-object measurements through ``cp-measure`` (optional dependency).

    Size/shape, Zernike, Feret, intensity, texture, granularity and radial distribution of each
    compartment and channel, with CellProfiler's ``<Compartment>_<Feature>_<Channel>`` names;
    measurements undefined for an object (NaN) are set to 0.
    """
    try:
        from cp_measure.featurizer import featurize, make_featurizer_config
    except ImportError as exc:
        raise InputError("--feature-set cp-measure needs the cp-measure package.",
                         "pip install cp-measure (see docs/dependencies.md)") from exc  # fmt: skip
    ids = np.intersect1d(np.unique(nuclei[nuclei > 0]), np.unique(cells[cells > 0]))
    comps = compartments(nuclei, cells)
    config = make_featurizer_config(
        list(CHANNELS), objects=list(comps), correlation_pearson=False,
        correlation_costes=False, correlation_manders_fold=False, correlation_rwc=False,
    )  # fmt: skip
    masks = np.stack([np.where(np.isin(m, ids), m, 0) for m in comps.values()])[None]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        data, columns, rows = featurize(image[None].astype(np.float64),
                                        masks.astype(np.int32), config)  # fmt: skip
    obj = np.array([r[1] for r in rows])
    lab = np.array([int(r[2]) for r in rows])
    parts = []
    for comp in comps:
        sel = obj == comp
        part = pd.DataFrame(data[sel], index=lab[sel],
                            columns=[cp_name(comp, c) for c in columns])  # fmt: skip
        parts.append(part.reindex(ids))
    frame = pd.concat(parts, axis=1).fillna(0.0).reset_index(drop=True)
    frame.insert(0, "ObjectNumber", ids.astype(np.int64))
    return frame
