"""Per-cell measurements of rendered crops, with CellProfiler-style names.

Simple intensity, shape, texture, correlation and radial statistics computed from a crop and its
segmentation, vectorised over cells. They stand in for the imaging issue's measurements; the
names follow CellProfiler so the compartment-prefix reader infers them.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from .render import CHANNELS

_SHAPE = ("Area", "Perimeter", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "FormFactor")
_INTENSITY = ("MeanIntensity", "StdIntensity", "IntegratedIntensity")
_OFFSETS = (1, 3)


def feature_names() -> list[str]:
    """Names of the columns :func:`measure_crops` returns, in order."""
    names = [f"Nuclei_AreaShape_{s}" for s in _SHAPE] + [f"Cells_AreaShape_{s}" for s in _SHAPE]
    names.append("Cytoplasm_AreaShape_Area")
    for comp in ("Nuclei", "Cytoplasm", "Cells"):
        names += [f"{comp}_Intensity_{m}_{ch}" for m in _INTENSITY for ch in CHANNELS]
    for comp in ("Nuclei", "Cytoplasm"):
        names += [f"{comp}_Texture_Contrast_{ch}_{d}" for d in _OFFSETS for ch in CHANNELS]
    names += [f"Cells_Correlation_Correlation_{a}_{b}" for a, b in combinations(CHANNELS, 2)]
    names += [f"Cells_RadialDistribution_FracAtD_{ch}_1of2" for ch in CHANNELS]
    return names


def _shape(mask: np.ndarray) -> np.ndarray:
    """Area, perimeter, major/minor axis, eccentricity, form factor ``(n, 6)`` of binary masks."""
    m = mask.astype(np.float32)
    area = m.sum(axis=(1, 2))
    # 4-connected boundary edges times pi/4: close to the true length for round outlines
    pad = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    edges = (pad[:, 1:, :] != pad[:, :-1, :]).sum(axis=(1, 2))
    edges += (pad[:, :, 1:] != pad[:, :, :-1]).sum(axis=(1, 2))
    perimeter = (np.pi / 4 * edges).astype(np.float32)
    yy, xx = np.mgrid[0 : mask.shape[1], 0 : mask.shape[2]].astype(np.float32)
    a = np.maximum(area, 1)
    my, mx = (m * yy).sum(axis=(1, 2)) / a, (m * xx).sum(axis=(1, 2)) / a
    dy, dx = yy - my[:, None, None], xx - mx[:, None, None]
    cyy, cxx, cxy = ((m * v).sum(axis=(1, 2)) / a for v in (dy * dy, dx * dx, dx * dy))
    root = np.sqrt(((cyy - cxx) / 2) ** 2 + cxy**2)
    l1, l2 = (cyy + cxx) / 2 + root, np.maximum((cyy + cxx) / 2 - root, 0)
    ecc = np.sqrt(np.clip(1 - l2 / np.maximum(l1, 1e-6), 0, 1))
    form = 4 * np.pi * area / np.maximum(perimeter, 1) ** 2
    return np.stack([area, perimeter, 4 * np.sqrt(l1), 4 * np.sqrt(l2), ecc, form], axis=1)


def _intensity(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean, std and integrated intensity per channel ``(n, 15)`` (measure-major)."""
    m = mask[:, None].astype(np.float32)
    n = np.maximum(m.sum(axis=(2, 3)), 1)
    total = (img * m).sum(axis=(2, 3))
    mean = total / n
    var = ((img - mean[:, :, None, None]) ** 2 * m).sum(axis=(2, 3)) / n
    return np.concatenate([mean, np.sqrt(var), total], axis=1)


def _contrast(img: np.ndarray, mask: np.ndarray, d: int) -> np.ndarray:
    """Mean squared difference of pixel pairs ``d`` apart (right and down) inside the mask."""
    num = np.zeros(img.shape[:2], np.float32)
    cnt = np.zeros(img.shape[:1], np.float32)
    for a, b, ma, mb in (
        (img[..., d:], img[..., :-d], mask[..., d:], mask[..., :-d]),
        (img[..., d:, :], img[..., :-d, :], mask[..., d:, :], mask[..., :-d, :]),
    ):
        pair = (ma & mb)[:, None].astype(np.float32)
        num += ((a - b) ** 2 * pair).sum(axis=(2, 3))
        cnt += pair.sum(axis=(1, 2, 3))
    return num / np.maximum(cnt, 1)[:, None]


def _correlation(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pearson correlation of every channel pair inside the mask ``(n, 10)``."""
    m = mask[:, None].astype(np.float32)
    n = np.maximum(m.sum(axis=(2, 3)), 1)
    centred = (img - ((img * m).sum(axis=(2, 3)) / n)[:, :, None, None]) * m
    flat = centred.reshape(len(img), img.shape[1], -1)
    cov = np.einsum("ncp,ndp->ncd", flat, flat)
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 1e-12))
    corr = cov / (sd[:, :, None] * sd[:, None, :])
    i, j = np.triu_indices(img.shape[1], k=1)
    return corr[:, i, j]


def _radial(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fraction of each channel's in-cell intensity within half the maximal radius ``(n, 5)``."""
    m = mask.astype(np.float32)
    yy, xx = np.mgrid[0 : mask.shape[1], 0 : mask.shape[2]].astype(np.float32)
    a = np.maximum(m.sum(axis=(1, 2)), 1)
    my, mx = (m * yy).sum(axis=(1, 2)) / a, (m * xx).sum(axis=(1, 2)) / a
    r = np.sqrt((yy - my[:, None, None]) ** 2 + (xx - mx[:, None, None]) ** 2) * m
    inner = (r <= 0.5 * r.max(axis=(1, 2), keepdims=True)) * m
    total = np.maximum((img * m[:, None]).sum(axis=(2, 3)), 1e-9)
    return (img * inner[:, None]).sum(axis=(2, 3)) / total


def measure_crops(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Measure single-cell crops.

    Parameters
    ----------
    images
        ``(n, 5, S, S)`` uint8 crops in :data:`~.render.CHANNELS` order (as in ``crops.zarr``).
    labels
        ``(n, S, S)`` segmentation: 0 background, 1 cytoplasm, 2 nucleus.

    Returns
    -------
    ``(n, len(feature_names()))`` float32 features; intensities on the [0, 1] scale.
    """
    img = images.astype(np.float32) / 255.0
    nuc, cell = labels == 2, labels >= 1
    cyto = labels == 1
    parts = [_shape(nuc), _shape(cell), cyto.sum(axis=(1, 2))[:, None].astype(np.float32)]
    parts += [_intensity(img, mk) for mk in (nuc, cyto, cell)]
    parts += [
        np.concatenate([_contrast(img, mk, d) for d in _OFFSETS], axis=1) for mk in (nuc, cyto)
    ]
    parts += [_correlation(img, cell), _radial(img, cell)]
    return np.concatenate(parts, axis=1).astype(np.float32)
