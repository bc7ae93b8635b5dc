"""Generation: new morphology read, normalised and grouped once (:class:`Conditions`), then each
group's latents sampled, decoded to gene-level cells, and streamed block by block.

Every generated cell is conditioned on its own random set of ``set_size`` of its group's
morphology cells, so the spread of the output reflects the group, not one set. Randomness comes
from one numpy generator (sets, library sizes) and one torch generator (noise, NB draws), both
seeded by ``SampleConfig.seed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import _keys as K
from .._version import __version__
from ..config import SampleConfig, to_dict
from ..data.morphology import tidy_obs
from ..data.pairing import with_key_aliases
from ..data.store import sample_set
from ..errors import InputError
from ..nn import SAMPLERS, make_scheduler

if TYPE_CHECKING:
    from ._model import PhenoSeqModel


@dataclass
class Conditions:
    """New morphology as the model conditions on it: normalised features ``x``
    ``"n_cells n_features"``, the (key-aliased) ``obs``, and the rows of every pairing group
    (``groups`` sorted)."""

    x: np.ndarray
    obs: pd.DataFrame
    groups: list[str]
    rows: dict[str, np.ndarray]

    def cells(self, group: str) -> np.ndarray:
        return self.x[self.rows[group]]

    def generated_obs(self, n_cells: int) -> pd.DataFrame:
        """The obs of ``n_cells`` generated cells per group, in group order: the columns
        constant within a group, and the group id."""
        obs = tidy_obs(pd.concat([_constant_obs(self.obs.iloc[self.rows[g]], g, n_cells)
                                  for g in self.groups], ignore_index=True))  # fmt: skip
        obs.index = [f"{g}-{i}" for g in self.groups for i in range(n_cells)]
        return obs

    def first_rows(self) -> pd.DataFrame:
        """One row per group (index: the group id, named ``phenoseq_group``): its constant obs
        columns."""
        return self.generated_obs(1).set_index(K.GROUP)


def prepare(model: PhenoSeqModel, morphology: ad.AnnData) -> Conditions:
    """Read the model's view of new morphology once: alias pycytominer-prefixed keys, normalise
    the features with the registered scaler, group the rows by the pairing key."""
    reg = model.registry
    obs = with_key_aliases(morphology.obs, (*reg.pair_key, reg.label_key, reg.batch_key))
    if obs is not morphology.obs:  # alias columns, data shared
        morphology = ad.AnnData(morphology.X, obs=obs, var=morphology.var)
    x = reg.normalize_features(morphology)
    groups = reg.group_ids(morphology.obs)
    order = sorted(set(groups))
    return Conditions(x, morphology.obs, order, {g: np.flatnonzero(groups == g) for g in order})


def _constant_obs(obs: pd.DataFrame, group: str, n: int) -> pd.DataFrame:
    """The obs columns constant within a group, repeated ``n`` times, plus the group id."""
    const = {c: obs[c].iloc[0] for c in obs.columns if obs[c].nunique(dropna=False) == 1}
    const.pop(K.GROUP, None)
    frame = pd.DataFrame({c: [v] * n for c, v in const.items()})
    frame[K.GROUP] = group
    return frame


def check_sample_config(config: SampleConfig) -> SampleConfig:
    if config.n_cells < 1:
        raise InputError(f"--n-cells must be at least 1 (got {config.n_cells}).",
                         "pass a positive number")  # fmt: skip
    if config.sampler not in SAMPLERS:
        raise InputError(f"unknown --sampler '{config.sampler}'.",
                         f"use one of {', '.join(sorted(SAMPLERS))}")  # fmt: skip
    return config


@torch.no_grad()
def condition_embedding(
    model: PhenoSeqModel, cells: np.ndarray, rng: np.random.Generator, n_sets: int = 8
) -> np.ndarray:
    """Mean pooled condition embedding ``"d_model"`` of ``n_sets`` random sets of ``cells``."""
    model.diffusion.eval()
    idx = np.stack([sample_set(rng, np.arange(len(cells)), model.train_config.set_size)
                    for _ in range(n_sets)])  # fmt: skip
    pooled, _ = model.diffusion.encode_condition(model.put(cells[idx]), None)
    return pooled.mean(dim=0).cpu().numpy()


@torch.no_grad()
def sample_latents(
    model: PhenoSeqModel,
    cells: np.ndarray,
    n_cells: int,
    rng: np.random.Generator,
    generator: torch.Generator,
    config: SampleConfig,
) -> np.ndarray:
    """``n_cells`` standardised latents ``"n_cells n_latent"`` for one group's ``cells``."""
    n_set = config.set_size or model.train_config.set_size
    model.diffusion.eval()
    scheduler = make_scheduler(config.sampler, n_train_timesteps=model.diffusion.n_train_timesteps,
                               prediction_type=model.diffusion.prediction_type)  # fmt: skip
    out, rows = [], np.arange(len(cells))
    for lo in range(0, n_cells, config.batch_size):
        b = min(config.batch_size, n_cells - lo)
        idx = np.stack([sample_set(rng, rows, n_set) for _ in range(b)])
        pooled, tokens = model.diffusion.encode_condition(model.put(cells[idx]), None)
        out.append(model.diffusion.sample(pooled, tokens, scheduler, config.n_steps,
                                          config.guidance, generator))  # fmt: skip
    return torch.cat(out).cpu().numpy()


def library_pool(model: PhenoSeqModel, group_index: int) -> np.ndarray:
    """The training library sizes of a registered group (at most 1,000)."""
    off = model.group_stats["library_offsets"]
    return model.group_stats["library"][off[group_index] : off[group_index + 1]]


def nearest_training_group(model: PhenoSeqModel, embedding: np.ndarray) -> int:
    """The training group (with library sizes) whose condition embedding is closest."""
    cand = [i for i, r in enumerate(model.registry.group_roles)
            if r == "train" and len(library_pool(model, i))]  # fmt: skip
    d = np.linalg.norm(model.group_stats["embedding"][cand] - embedding, axis=1)
    return cand[int(np.argmin(d))]


@torch.no_grad()
def decode(
    model: PhenoSeqModel, z_std: torch.Tensor, library: torch.Tensor, generator: torch.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Standardised latents to ``(X, log1p)`` (see :meth:`Kind.decode`)."""
    dev = model.device
    z = model.put(z_std) * model.latent_std.to(dev) + model.latent_mean.to(dev)
    return model.registry.expression_kind.decode(model.autoencoder, z, model.put(library),
                                                 generator, model.registry)  # fmt: skip


def generate_blocks(
    model: PhenoSeqModel, conditions: Conditions, config: SampleConfig, progress: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray]]:
    """``(X, log1p, latent)`` of ``config.n_cells`` cells for each group of ``conditions``, in
    group order, lazily (a caller reduces or writes a group before the next is sampled)."""
    check_sample_config(config)
    rng, gen = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    known = {g: i for i, g in enumerate(model.registry.group_names)}
    for g in tqdm(conditions.groups, desc="generate", disable=not progress):
        cells = conditions.cells(g)
        z = torch.from_numpy(sample_latents(model, cells, config.n_cells, rng, gen, config))
        gi = known.get(g)
        if gi is None or not len(library_pool(model, gi)):
            gi = nearest_training_group(model, condition_embedding(model, cells, rng))
        lib = torch.from_numpy(rng.choice(library_pool(model, gi), size=config.n_cells))
        x, log1p = decode(model, z, lib, gen)
        latent = (z * model.latent_std + model.latent_mean).numpy().astype(np.float32)
        yield x, log1p, latent


def generation_uns(model: PhenoSeqModel, config: SampleConfig) -> dict:
    """The provenance of generated cells (``uns['phenoseq']``)."""
    return {
        "sampler": config.sampler, "n_steps": config.n_steps, "guidance": config.guidance,
        "seed": config.seed, "n_cells_per_group": config.n_cells,
        "expression_kind": model.registry.kind, "version": __version__,
        "set_size": config.set_size or model.train_config.set_size,
        "settings": {"sample": to_dict(config)},
    }  # fmt: skip
