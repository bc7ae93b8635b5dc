"""Draws: ``K`` generated pseudo-bulks per group (each the mean log-normalised profile of ``N``
generated cells), and their deltas against the control of the same batch.

A group's draws give, per gene, a centre (their mean), a spread (their SD) and raw quantile
intervals; memory holds one group's generated cells at a time, whatever the screen's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from .. import _keys as K
from ..config import SampleConfig, UncertaintyConfig, override
from ..data.pairing import with_key_aliases
from ..errors import InputError
from ..model import Conditions, PhenoSeqModel


@dataclass
class Draws:
    """``K`` generated pseudo-bulks per group: ``values`` ``"n_groups n_draws n_genes"``."""

    groups: list[str]
    values: np.ndarray
    obs: pd.DataFrame  # one row per group: the morphology columns constant within it

    @property
    def centre(self) -> np.ndarray:
        return self.values.mean(axis=1)

    @property
    def spread(self) -> np.ndarray:
        return self.values.std(axis=1, ddof=1)

    def index(self, groups: list[str]) -> list[int]:
        return [self.groups.index(g) for g in groups]


def draw(
    model: PhenoSeqModel,
    morphology: ad.AnnData | Conditions,
    config: UncertaintyConfig | None = None,
    sample: SampleConfig | None = None,
    progress: bool = True,
) -> Draws:
    """``n_draws`` pseudo-bulks of ``n_cells_per_draw`` generated cells for every group of
    ``morphology`` (sampler settings and seed from ``sample``)."""
    cfg = config or UncertaintyConfig()
    n_draws, n_cells = cfg.n_draws, cfg.n_cells_per_draw
    if n_draws < 2 or n_cells < 1:
        raise InputError(f"--n-draws must be >= 2 and cells per draw >= 1 (got {n_draws}, "
                         f"{n_cells}).", "raise them")  # fmt: skip
    cond = model.prepare(morphology)
    sample = override(sample or SampleConfig(), n_cells=n_draws * n_cells)
    _, blocks = model.generate_blocks(cond, sample, progress=progress)
    values = np.stack([(log1p if log1p is not None else x).reshape(n_draws, n_cells, -1)
                       .mean(axis=1) for x, log1p, _ in blocks])  # fmt: skip
    return Draws(list(cond.groups), values.astype(np.float32), cond.first_rows())


def replicates_of(model: PhenoSeqModel, obs: pd.DataFrame) -> np.ndarray:
    """The replicate (the split's replicate column) of every row of ``obs``, one row per group;
    all "0" when there is no such column."""
    rep_key = model.registry.split.get("config", {}).get("replicate_key", K.REPLICATE)
    o = with_key_aliases(obs, (rep_key,))
    return o[rep_key].astype(str).to_numpy() if rep_key in o else np.full(len(o), "0")


def controls(model: PhenoSeqModel, obs: pd.DataFrame, groups: list[str]) -> dict[str, str]:
    """Each group's control group in the same batch (replicate), where one exists; ``obs`` has
    one row per group of ``groups``."""
    reg = model.registry
    o = with_key_aliases(obs, (reg.label_key,))
    if reg.control is None or reg.label_key not in o:
        return {}
    is_ctrl = o[reg.label_key].astype(str).to_numpy() == str(reg.control)
    batch = replicates_of(model, obs)
    ctrl_of_batch = {b: g for g, b, c in zip(groups, batch, is_ctrl, strict=True) if c}
    return {g: ctrl_of_batch[b] for g, b in zip(groups, batch, strict=True) if b in ctrl_of_batch}


def deltas(draws: Draws, controls: dict[str, str]) -> tuple[list[str], np.ndarray]:
    """Draw-wise deltas (group draw k minus its control's draw k) of groups with a control."""
    idx = {g: i for i, g in enumerate(draws.groups)}
    have = [g for g in draws.groups if g in controls and controls[g] in idx]
    if not have:
        return [], np.zeros((0,) + draws.values.shape[1:], np.float32)
    d = np.stack([draws.values[idx[g]] - draws.values[idx[controls[g]]] for g in have])
    return have, d
