"""Classical segmentation: nuclei from DNA, cells grown from the nuclei in a cytoplasm channel.

The recipe is CellProfiler's IdentifyPrimaryObjects + IdentifySecondaryObjects (propagation)
re-expressed with scikit-image: smooth, threshold (minimum cross-entropy), split touching nuclei
by a watershed on the distance transform from its local maxima (at least ``min_peak_distance``
apart), drop objects outside the size range or touching the border; then a watershed on the
cytoplasm channel's inverted intensity seeded by the nuclei, limited to the thresholded
foreground. Optional illumination correction divides each channel by its heavily blurred self
(a per-field flat field). Sizes are in pixels; scale them to your
objective with :meth:`SegmentConfig.for_nucleus_diameter`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from .fields import CHANNELS

Threshold = Literal["otsu", "li"]


@dataclass(frozen=True)
class SegmentConfig:
    """Segmentation parameters (stored in the featurize output's ``uns``)."""

    nucleus_diameter: float = 40.0  # typical nucleus diameter in pixels
    smooth_sigma: float = 1.0  # Gaussian smoothing before thresholding (pixels)
    threshold: Threshold = "li"  # minimum cross-entropy, CellProfiler's usual nucleus choice
    threshold_factor: float = 1.0  # multiply the automatic nucleus threshold
    min_nucleus_area: int = 200  # pixels; smaller objects are debris
    max_nucleus_area: int = 10_000
    min_peak_distance: float = 10.0  # pixels between the centres of two touching nuclei
    cell_channel: str = "AGP"  # cytoplasm channel the cells are grown in
    cell_threshold_factor: float = 0.5  # foreground = smoothed > factor * Otsu threshold
    max_cell_distance: float = 120.0  # a cell reaches at most this far from its nucleus (px)
    discard_border: bool = True  # drop nuclei touching the image border (and their cells)
    illumination_correction: bool = False
    illumination_sigma: float = 100.0

    @classmethod
    def for_nucleus_diameter(cls, diameter: float, **kw) -> SegmentConfig:
        """Every size parameter scaled from the default 40-pixel nucleus to ``diameter``."""
        s = diameter / 40.0
        base = cls()
        return replace(
            base, nucleus_diameter=diameter, smooth_sigma=max(0.5, base.smooth_sigma * s),
            min_nucleus_area=max(4, int(base.min_nucleus_area * s * s)),
            max_nucleus_area=int(base.max_nucleus_area * s * s),
            min_peak_distance=base.min_peak_distance * s,
            max_cell_distance=base.max_cell_distance * s,
            illumination_sigma=base.illumination_sigma * s, **kw,
        )  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)


def correct_illumination(plane: np.ndarray, sigma: float) -> np.ndarray:
    """``plane`` divided by its Gaussian-blurred self, rescaled to the original mean."""
    flat = ndi.gaussian_filter(plane.astype(np.float32), sigma)
    flat = np.maximum(flat, np.percentile(flat, 1) + 1e-6)
    out = plane / flat
    return (out * (plane.mean() / max(out.mean(), 1e-12))).astype(np.float32)


def _threshold(img: np.ndarray, method: Threshold) -> float:
    from skimage import filters

    return float(filters.threshold_li(img) if method == "li" else filters.threshold_otsu(img))


def segment_nuclei(dna: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """Nucleus instance labels ``(H, W)`` int32 (0 = background) of a DNA plane."""
    from skimage import feature, measure, morphology, segmentation

    smooth = ndi.gaussian_filter(dna.astype(np.float32), cfg.smooth_sigma)
    if float(smooth.max() - smooth.min()) <= 1e-9:
        return np.zeros(dna.shape, np.int32)
    fg = smooth > _threshold(smooth, cfg.threshold) * cfg.threshold_factor
    fg = ndi.binary_fill_holes(fg)
    fg = morphology.remove_small_objects(fg, max_size=max(1, cfg.min_nucleus_area // 4) - 1)
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(fg), 1.0)
    peaks = feature.peak_local_max(dist, min_distance=max(1, round(cfg.min_peak_distance)),
                                   labels=measure.label(fg), exclude_border=False)  # fmt: skip
    markers = np.zeros(dna.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = segmentation.watershed(-dist, markers, mask=fg)
    return _filter_objects(labels, cfg.min_nucleus_area, cfg.max_nucleus_area,
                           cfg.discard_border)  # fmt: skip


def _filter_objects(labels: np.ndarray, lo: int, hi: int, discard_border: bool) -> np.ndarray:
    from skimage import segmentation

    areas = np.bincount(labels.ravel())
    bad = (areas < lo) | (areas > hi)
    bad[0] = False
    if discard_border:
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        bad[edge[edge > 0]] = True
    labels = np.where(bad[labels], 0, labels)
    return segmentation.relabel_sequential(labels)[0].astype(np.int32)


def segment_cells(
    cyto: np.ndarray, nuclei: np.ndarray, cfg: SegmentConfig = SegmentConfig()
) -> np.ndarray:
    """Cell labels ``(H, W)`` int32: each nucleus grown through the cytoplasm channel.

    Cell ``k`` contains nucleus ``k`` (same label), so compartments pair by label.
    """
    from skimage import filters, segmentation

    if nuclei.max() == 0:
        return np.zeros_like(nuclei)
    smooth = ndi.gaussian_filter(cyto.astype(np.float32), cfg.smooth_sigma)
    fg = smooth > filters.threshold_otsu(smooth) * cfg.cell_threshold_factor
    near = ndi.distance_transform_edt(nuclei == 0) <= cfg.max_cell_distance
    mask = (fg & near) | (nuclei > 0)
    # flood from the nuclei down the intensity: the dim gap between two cells is the boundary
    cells = segmentation.watershed(-smooth, nuclei, mask=mask)
    # a cell is the connected part of its watershed basin that holds its nucleus
    return _keep_nucleus_component(cells, nuclei)


def _keep_nucleus_component(cells: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    from skimage import measure

    out = np.zeros_like(cells)
    for region in measure.regionprops(cells):
        sl = region.slice
        own = region.image
        comp = measure.label(own, connectivity=1)
        if comp.max() > 1:
            hits = np.unique(comp[own & (nuclei[sl] == region.label)])
            own = np.isin(comp, hits[hits > 0])
        out[sl][own] = region.label
    return out.astype(np.int32)


def segment(image: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> tuple[np.ndarray, ...]:
    """``(nuclei, cells, image)`` of a field ``(5, H, W)`` (image illumination-corrected if set)."""

    if cfg.illumination_correction:
        image = np.stack([correct_illumination(p, cfg.illumination_sigma) for p in image])
    nuclei = segment_nuclei(image[CHANNELS.index("DNA")], cfg)
    cells = segment_cells(image[CHANNELS.index(cfg.cell_channel)], nuclei, cfg)
    return nuclei, cells, image


def object_f1(pred: np.ndarray, truth: np.ndarray, iou: float = 0.5) -> dict[str, float]:
    """Object-level precision, recall and F1 at an IoU threshold (each object matched once).

    For ``iou >= 0.5`` a match is unique by construction (two objects cannot both overlap one
    object by more than half its union), as in the StarDist/DSB2018 protocol.
    """
    p, t = pred.ravel().astype(np.int64), truth.ravel().astype(np.int64)
    n_p, n_t = int(p.max()), int(t.max())
    both = (p > 0) & (t > 0)
    pairs, inter = np.unique(p[both] * (n_t + 1) + t[both], return_counts=True)
    pi, ti = pairs // (n_t + 1), pairs % (n_t + 1)
    area_p, area_t = np.bincount(p, minlength=n_p + 1), np.bincount(t, minlength=n_t + 1)
    ious = inter / (area_p[pi] + area_t[ti] - inter)
    ok = ious > iou if iou >= 0.5 else ious >= iou
    if iou < 0.5:  # greedy one-to-one matching by IoU
        order = np.argsort(-ious)
        used_p, used_t, tp = set(), set(), 0
        for k in order[ok[order]]:
            if pi[k] not in used_p and ti[k] not in used_t:
                used_p.add(pi[k]), used_t.add(ti[k])
                tp += 1
    else:
        tp = int(ok.sum())
    n_pred = len(np.unique(p[p > 0]))
    n_true = len(np.unique(t[t > 0]))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_pred + n_true) if n_pred + n_true else 1.0
    return {"tp": tp, "n_pred": n_pred, "n_true": n_true, "precision": precision,
            "recall": recall, "f1": f1}  # fmt: skip


def labels_from_outlines(outlines: np.ndarray, min_area: int = 200) -> np.ndarray:
    """Instance labels from an outline image (CellProfiler ``OverlayOutlines`` / ``SaveImages``).

    ``outlines`` is ``(H, W)`` or ``(H, W, 3)``; any non-zero pixel is an outline. The regions
    the outlines enclose become objects (the background, the region touching the border, is
    dropped, as are gaps under ``min_area`` pixels enclosed between touching outlines) and grow
    back over their own outline pixels.
    """
    from skimage import segmentation

    line = outlines.any(axis=-1) if outlines.ndim == 3 else outlines > 0
    regions, _ = ndi.label(~line)
    edge = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    regions[np.isin(regions, edge)] = 0
    small = np.bincount(regions.ravel()) < min_area  # gaps enclosed between touching outlines
    small[0] = False
    regions[small[regions]] = 0
    regions = segmentation.relabel_sequential(regions)[0]
    return segmentation.expand_labels(regions, 1).astype(np.int32)
