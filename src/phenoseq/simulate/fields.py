"""Whole fields of view: several rendered cells of one well on a common background, with
ground-truth nucleus and cell instance labels (for the imaging issue's segmentation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pandas as pd
import zarr

from .. import _keys as K
from .design import ROUND
from .model import morphology_params, sample_state
from .render import CHANNELS, INTENSITY_SCALE, acquire, blur, compose_field, render_cells
from .world import BLOCK, World, morphology_block, stream_rng


def _corners(field_size: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Top-left corners ``(k, 2)`` of cell crops: a jittered grid, about 80% of spots filled."""
    g = field_size // size
    spots = np.stack(np.meshgrid(np.arange(g), np.arange(g), indexing="ij"), -1).reshape(-1, 2)
    keep = rng.random(len(spots)) < 0.8
    keep[rng.integers(len(spots))] = True
    jitter = rng.integers(-(size // 8), size // 8 + 1, (int(keep.sum()), 2))
    return spots[keep] * size + (field_size - g * size) // 2 + jitter


def render_field(
    world: World, t: int, r: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One field of treatment ``t`` in replicate ``r``.

    Returns
    -------
    image ``(5, F, F)`` uint8, nuclei and cells ``(F, F)`` int32 instance labels.
    """
    c, m = world.config, world.model
    corners = _corners(c.field_size, c.crop_size, rng)
    state, _ = sample_state(m, t, r, len(corners), rng)
    signal, labels = render_cells(morphology_params(m, state, t, r, rng), rng, c.crop_size)
    image, nuclei, cells = compose_field(signal, labels, corners, c.field_size)
    gain, background, sigma = m.camera(r)
    image = blur(image[None], np.array([sigma]))
    return (
        acquire(image, gain[None], background[None], c.photons, rng)[0],
        nuclei,
        cells,
    )


def write_fields(path: str | Path, world: World, rng: np.random.Generator) -> None:
    """``n_fields`` fields of random samples into a zarr group ``images`` ``(n, 5, F, F)``
    uint8, ``nuclei`` and ``cells`` ``(n, F, F)`` int32; ``attrs['fields']`` says whose."""
    c, samples = world.config, world.design.samples
    n, f = c.n_fields, c.field_size
    picks = rng.choice(len(samples), size=n, replace=n > len(samples))
    group = zarr.open_group(str(path), mode="w")
    images = group.create_array("images", shape=(n, 5, f, f), chunks=(1, 5, f, f), dtype="uint8")
    nuclei = group.create_array("nuclei", shape=(n, f, f), chunks=(1, f, f), dtype="int32")
    cells = group.create_array("cells", shape=(n, f, f), chunks=(1, f, f), dtype="int32")
    meta: list[dict[str, Any]] = []
    for i, s in enumerate(picks):
        row = samples.iloc[int(s)]
        images[i], nuclei[i], cells[i] = render_field(
            world, int(row["t_index"]), int(row["r_index"]), rng
        )
        keys = (K.SAMPLE_ID, K.TREATMENT, K.REPLICATE, ROUND, K.PLATE, K.WELL)
        meta.append({k: str(row[k]) for k in keys})
        meta[-1]["n_cells"] = int(cells[i].max())
    group.attrs.update(
        {
            "channels": list(CHANNELS),
            "intensity_scale": INTENSITY_SCALE,
            "fields": meta,
            "seed": c.seed,
        }
    )


def well_images(world: World, s: int) -> list[np.ndarray]:
    """The ``n_sites`` fields ``(5, F, F)`` uint8 of sample ``s``: the very cells of its
    ``morphology.h5ad`` rows (same random stream, so same states and renders), site by site as
    ``obs['Metadata_Site']`` assigns them, on a jittered grid, then blurred and acquired as a
    whole field (replicate gain, background, blur and shot noise)."""
    c, m = world.config, world.model
    t, r = (int(world.design.samples[col].iloc[s]) for col in ("t_index", "r_index"))
    signals, labels = [], []
    for b, start in enumerate(range(0, c.n_morphology_cells, BLOCK)):
        params, rng = morphology_block(world, s, t, r, b, min(BLOCK, c.n_morphology_cells - start))
        sig, lab = render_cells(params, rng, c.crop_size)
        signals.append(sig)
        labels.append(lab)
    signal, label = np.concatenate(signals), np.concatenate(labels)
    site = np.arange(c.n_morphology_cells) % c.n_sites  # as design.sites()
    gain, background, sigma = m.camera(r)
    rng = stream_rng(c.seed, "images", s)
    out = []
    for k in range(c.n_sites):
        idx = np.flatnonzero(site == k)
        g = int(np.ceil(np.sqrt(len(idx) / 0.75)))  # grid about 3/4 full
        size = g * c.crop_size
        spots = rng.choice(g * g, len(idx), replace=False)
        jitter = rng.integers(-(c.crop_size // 8), c.crop_size // 8 + 1, (len(idx), 2))
        corners = np.stack([spots // g, spots % g], 1) * c.crop_size + jitter
        image, _, _ = compose_field(signal[idx], label[idx], corners, size)
        image = blur(image[None], np.array([sigma]))
        out.append(acquire(image, gain[None], background[None], c.photons, rng)[0])
    return out


def write_images(folder: str | Path, world: World) -> Path:
    """Every sample's fields as 8-bit PNGs ``<plate>_<well>_s<site>_<channel>.png`` and the
    plate map ``platemap.tsv`` (plate, well -> Sample_ID, Treatment, ..., Round): the input of
    ``phenoseq featurize`` (docs/simulator.md)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    samples = world.design.samples
    for s in range(len(samples)):
        row = samples.iloc[s]
        for k, image in enumerate(well_images(world, s), start=1):
            for ch, plane in zip(CHANNELS, image, strict=True):
                iio.imwrite(folder / f"{row[K.PLATE]}_{row[K.WELL]}_s{k}_{ch}.png", plane)
    cols = [K.PLATE, K.WELL, K.SAMPLE_ID, K.TREATMENT, K.COMPOUND, K.DOSE, K.REPLICATE, ROUND]
    table = pd.DataFrame({c: samples[c].to_numpy() for c in cols if c in samples})
    table.rename(columns={K.PLATE: "plate", K.WELL: "well"}).to_csv(
        folder / "platemap.tsv", sep="\t", index=False
    )
    return folder
