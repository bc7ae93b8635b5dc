"""Run the simulator: generate cells block by block and write the output folder.

Every random draw comes from a named stream of :mod:`.world`: outputs do not depend on
``chunk_size`` or on the order files are written in.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import _keys as K
from ..io import atomic_path
from ..writers import CropWriter, H5adWriter, rechunk
from .config import SimulatorConfig
from .design import Design, make_design, obs_for
from .features import feature_names, measure_crops
from .fields import write_fields, write_images
from .model import morphology_params, sample_counts, sample_state
from .render import CHANNELS, INTENSITY_SCALE, LABELS, acquire, blur, render_cells
from .surrogate import Surrogate, fit_surrogate, surrogate_inputs
from .world import BLOCK, World, make_world, morphology_block, stream_rng

__all__ = ["BLOCK", "World", "make_world", "morphology_block", "simulate", "stream_rng"]

STATE_KEY = "X_state"
RESPONDER_KEY = "responder"


def _blocks(design: Design, n_per_sample: int) -> Iterator[tuple[int, int, int, int, int]]:
    """``(sample, treatment, replicate, block, n_cells)`` for every block, sample-major."""
    for s, (t, r) in enumerate(
        zip(design.samples["t_index"], design.samples["r_index"], strict=True)
    ):
        for b, start in enumerate(range(0, n_per_sample, BLOCK)):
            yield s, int(t), int(r), b, min(BLOCK, n_per_sample - start)


def image_cells(
    world: World, params: np.ndarray, r: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Render, blur and acquire cells of replicate ``r``: uint8 crops ``(n, 5, S, S)`` and
    labels ``(n, S, S)``."""
    m, n = world.model, len(params)
    signal, labels = render_cells(params, rng, world.config.crop_size)
    gain, background, sigma = m.camera(r)
    signal = blur(signal, np.full(n, sigma))
    gain, bg = np.tile(gain, (n, 1)), np.tile(background, (n, 1))
    return acquire(signal, gain, bg, world.config.photons, rng), labels


def morphology_blocks(world: World, surrogate: Surrogate | None = None) -> Iterator[tuple]:
    """Per block: ``(features, crops, labels)`` from rendering, or ``(features,)`` from the
    surrogate (features-only mode)."""
    c = world.config
    for s, t, r, b, n in _blocks(world.design, c.n_morphology_cells):
        params, rng = morphology_block(world, s, t, r, b, n)
        if surrogate is not None:
            yield (surrogate.predict(surrogate_inputs(params, world.model, r), rng),)
        else:
            images, labels = image_cells(world, params, r, rng)
            yield measure_crops(images, labels), images, labels


def count_blocks(world: World, stream: str, n_per_sample: int) -> Iterator[tuple]:
    """Per block: ``(counts CSR, state, responder)`` of fresh cells (``stream`` keeps the
    expression and truth populations apart)."""
    c = world.config
    for s, t, r, b, n in _blocks(world.design, n_per_sample):
        rng = stream_rng(c.seed, stream, s, b)
        state, responder = sample_state(world.model, t, r, n, rng)
        yield sample_counts(world.model, state, t, r, rng), state.astype(np.float32), responder


def fit_world_surrogate(world: World) -> Surrogate:
    """Render and measure ``n_surrogate_cells`` cells of random samples; fit the surrogate."""
    c, rng = world.config, stream_rng(world.config.seed, "surrogate")
    picks = np.bincount(
        rng.integers(len(world.design.samples), size=c.n_surrogate_cells),
        minlength=len(world.design.samples),
    )
    inputs, feats = [], []
    for s, k in enumerate(picks):
        if k == 0:
            continue
        t, r = (int(world.design.samples[col].iloc[s]) for col in ("t_index", "r_index"))
        params = morphology_params(
            world.model, sample_state(world.model, t, r, k, rng)[0], t, r, rng
        )
        inputs.append(surrogate_inputs(params, world.model, r))
        feats.append(measure_crops(*image_cells(world, params, r, rng)))
    return fit_surrogate(np.concatenate(inputs), np.concatenate(feats))


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def _package_version() -> str:
    try:
        return version("phenoseq")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def _uns(world: World, kind: str, **extra: Any) -> dict[str, Any]:
    d, c = world.design, world.config
    tr = d.treatments
    info = {
        "kind": kind,
        "seed": c.seed,
        "config": c.to_dict(),
        "version": _package_version(),
        "unseen_treatments": d.unseen_treatments,
        "unseen_compounds": sorted(set(tr.loc[tr["is_unseen"], K.COMPOUND])),
        "heldout_replicates": d.heldout_replicates,
        "replicate_roles": dict(d.roles),
        "rounds": list(d.rounds),
        "replicate_rounds": dict(d.replicate_rounds),
        "control": tr.index[0],
        "treatments": {
            "label": list(tr.index),
            K.COMPOUND: list(tr[K.COMPOUND]),
            K.DOSE: tr[K.DOSE].to_numpy(),
            "is_unseen": tr["is_unseen"].to_numpy(),
        },
        "samples": {col: d.samples[col].to_numpy() for col in d.samples.columns},
        **extra,
    }
    return {K.UNS: info}


def _gene_names(n: int) -> pd.DataFrame:
    width = max(4, len(str(n)))
    return pd.DataFrame(index=pd.Index([f"G{i + 1:0{width}d}" for i in range(n)]))


def _write_morphology(out: Path, world: World, bar: tqdm) -> None:
    c = world.config
    obs = obs_for(world.design, c.n_morphology_cells, "m", n_sites=c.n_sites)
    var = pd.DataFrame(index=pd.Index(feature_names()))
    surrogate = fit_world_surrogate(world) if c.features_only else None
    source = "surrogate of rendered-crop features" if surrogate else "rendered crops (crops.zarr)"
    extra = {"channels": list(CHANNELS), "features_source": source}
    if surrogate is not None:
        extra["surrogate_median_r2"] = float(np.median(surrogate.r2))
    crops = None
    if surrogate is None:
        attrs = {
            "channels": list(CHANNELS),
            "labels": LABELS,
            "intensity_scale": INTENSITY_SCALE,
            "seed": c.seed,
            "rows": "aligned with morphology.h5ad",
        }
        crops = CropWriter(out / "crops.zarr", len(obs), len(CHANNELS), c.crop_size, attrs)
    with H5adWriter(
        out / "morphology.h5ad",
        obs,
        var,
        _uns(world, "simulated_morphology", **extra),
        sparse=False,
    ) as w:
        for chunk in rechunk(_ticking(morphology_blocks(world, surrogate), bar), c.chunk_size):
            w.append(chunk[0])
            if crops is not None:
                crops.append(chunk[1], chunk[2])


def _write_counts(path: Path, world: World, stream: str, n_per_sample: int, bar: tqdm) -> None:
    c, truth = world.config, stream == "truth"
    obs = obs_for(world.design, n_per_sample, stream[0])
    extra = {"model": world.model.to_uns(), "state_key": STATE_KEY} if truth else {}
    uns = _uns(world, f"simulated_{stream}", **extra)
    obsm = {STATE_KEY: c.n_programs} if truth else None
    with H5adWriter(path, obs, _gene_names(c.n_genes), uns, sparse=True, obsm=obsm) as w:
        for counts, state, responder in rechunk(
            _ticking(count_blocks(world, stream, n_per_sample), bar), c.chunk_size
        ):
            if truth:
                w.append(counts, obsm={STATE_KEY: state}, obs={RESPONDER_KEY: responder})
            else:
                w.append(counts)


def _ticking(blocks: Iterator[tuple], bar: tqdm) -> Iterator[tuple]:
    for block in blocks:
        bar.update(1)
        yield block


def summarize_config(config: SimulatorConfig) -> str:
    """One line: design and sizes of the dataset ``config`` makes."""
    d = make_design(config, stream_rng(config.seed, "design"))
    n, c = len(d.samples), config
    kind = "surrogate features" if c.features_only else "rendered crops"
    rounds = f" in {len(c.rounds)} rounds ({' + '.join(map(str, c.rounds))})" if c.rounds else ""
    return (
        f"{len(d.treatments)} treatments (DMSO + {c.n_treatments}; {len(d.unseen_treatments)} "
        f"unseen, only in replicates {', '.join(d.heldout_replicates)}) x {c.n_replicates} "
        f"replicates{rounds}: {n * c.n_morphology_cells:,} imaged cells ({kind}), "
        f"{n * c.n_expression_cells:,} sequenced and {n * c.n_truth_cells:,} truth cells x "
        f"{c.n_genes:,} genes; seed {c.seed}"
    )


def _n_blocks(n_samples: int, n_per_sample: int) -> int:
    return n_samples * -(-n_per_sample // BLOCK)


def simulate(
    out: str | Path, config: SimulatorConfig | None = None, *, progress: bool = False
) -> Path:
    """Write a simulated paired dataset with a known answer into the folder ``out``.

    Parameters
    ----------
    out
        Output folder, built in a temporary sibling and moved into place only when complete
        (an existing folder is replaced).
    config
        Every parameter (default: :class:`SimulatorConfig` defaults).
    progress
        Show a progress bar.

    Returns
    -------
    ``out``, holding ``morphology.h5ad``, ``expression.h5ad``, ``truth.h5ad`` and, unless
    ``config.features_only``, ``crops.zarr`` and ``fields.zarr``; with ``config.write_images``
    also ``images/`` (every sample's fields + ``platemap.tsv``) (docs/simulator.md).
    """
    c = config if config is not None else SimulatorConfig()
    world, out = make_world(c), Path(out)
    n = len(world.design.samples)
    total = sum(
        _n_blocks(n, k) for k in (c.n_morphology_cells, c.n_expression_cells, c.n_truth_cells)
    )
    with (
        atomic_path(out, is_dir=True) as tmp,
        tqdm(total=total, desc="simulate", unit="block", disable=not progress, leave=False) as bar,
    ):
        _write_morphology(tmp, world, bar)
        if not c.features_only and c.n_fields:
            write_fields(tmp / "fields.zarr", world, stream_rng(c.seed, "fields"))
        if c.write_images:
            write_images(tmp / "images", world)
        _write_counts(tmp / "expression.h5ad", world, "expression", c.n_expression_cells, bar)
        _write_counts(tmp / "truth.h5ad", world, "truth", c.n_truth_cells, bar)
    return out
