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
from ._wells import well_mean

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
    """A well's embedding: its standardised whitened mean morphology (well conditions), or the
    mean pooled condition embedding ``"d_model"`` of ``n_sets`` random sets of ``cells``."""
    if model.conditioner is not None:
        return model.conditioner.represent(
            well_mean(cells, rng, model.config.max_condition_cells)[None]
        )[0]
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


@torch.no_grad()
def _sample_at(model: PhenoSeqModel, cond: np.ndarray, n: int, gen: torch.Generator,
               config: SampleConfig) -> torch.Tensor:  # fmt: skip
    """``n`` latents ``"n k"`` (on the host) at one well condition vector ``cond`` ``"1 d"``."""
    model.diffusion.eval()
    scheduler = make_scheduler(config.sampler, n_train_timesteps=model.diffusion.n_train_timesteps,
                               prediction_type=model.diffusion.prediction_type)  # fmt: skip
    pooled, tokens = model.diffusion.encode_condition(model.put(cond), None)
    out = [model.diffusion.sample(pooled, tokens, scheduler, config.n_steps, config.guidance, gen,
                                  n_per_condition=min(config.batch_size, n - lo)).cpu()
           for lo in range(0, n, config.batch_size)]  # fmt: skip
    return torch.cat(out)


def apportion(p: np.ndarray, n: int) -> np.ndarray:
    """Integer counts summing to ``n`` in proportion to ``p`` (largest remainder)."""
    raw = np.asarray(p, float) / max(float(np.sum(p)), 1e-300) * n
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts


def sample_well(
    model: PhenoSeqModel, cells: np.ndarray, n_cells: int, rng: np.random.Generator,
    gen: torch.Generator, config: SampleConfig,
) -> tuple[torch.Tensor, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:  # fmt: skip
    """``n_cells`` standardised latents of one well (well conditions), their library sizes and,
    for an anchored kind, the per-cell component and the components' gene-space means (else
    None; see :func:`anchor`).

    With the mean head, the well's cells are split over the components of its mixture (the
    training treatments it may be, and kernel ridge's interpolation) in proportion to their
    weights; each component's cells are generated at the condition (well, component mean) —
    as deviations from that mean for residual generation."""
    m = well_mean(cells, rng, model.config.max_condition_cells)[None]
    head = model.mean_head
    if head is None:
        z = _sample_at(model, model.conditioner.vector(m, None), n_cells, gen, config)
        gi = nearest_training_group(model, model.conditioner.represent(m)[0])
        return z, rng.choice(library_pool(model, gi), size=n_cells), None
    rep = head.represent(m)
    w, means, new_var = head.components(rep)
    w = guided_weights(w[0], head.n_classes, config.guidance)[None]
    targets = _anchor_targets(model, head, rep)
    zs, libs, comp = [], [], []
    for c in np.flatnonzero(counts := apportion(w[0], n_cells)):
        mu = torch.from_numpy(np.repeat(means[0, c][None], counts[c], 0).astype(np.float32))
        if c == head.n_classes and new_var[0].any():  # the new component's predictive noise
            noise = torch.randn(mu.shape, generator=gen)
            mu = mu + noise * torch.from_numpy(np.sqrt(new_var[0]).astype(np.float32))
        z = _sample_at(model, model.conditioner.vector(m, means[0, c][None]), int(counts[c]), gen,
                       config)  # fmt: skip
        zs.append(mu + z if model.generates_residuals else z)
        libs.append(rng.choice(_component_libraries(model, head, c, m), size=counts[c]))
        comp.append(np.full(counts[c], c))
    order = rng.permutation(n_cells)  # components mixed: any run of cells is a random sample
    anchors = (np.concatenate(comp)[order], targets) if targets is not None else None
    return torch.cat(zs)[torch.from_numpy(order)], np.concatenate(libs)[order], anchors


def _anchor_targets(model: PhenoSeqModel, head, rep: np.ndarray) -> np.ndarray | None:
    """``"C+1 genes"`` the mean head's gene-space mean of each component, for an anchored kind
    (else None)."""
    if not model.registry.expression_kind.anchored:
        return None
    targets = model.group_stats["pseudobulk"].astype(np.float64)
    return head.anchors(rep, targets)[0].astype(np.float32)


def anchor(x: np.ndarray, anchors: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Decoded values ``x`` with each component's cells re-centred on its gene-space mean
    (``anchors``: per-cell component, ``"C+1 genes"`` means): the mean of the generated cells
    is the mean head's prediction, the decoder shapes only the spread around it."""
    if anchors is None:
        return x
    comp, targets = anchors
    for c in np.unique(comp):
        rows = comp == c
        x[rows] += targets[c] - x[rows].mean(axis=0)
    return x


def guided_weights(w: np.ndarray, n_classes: int, guidance: float) -> np.ndarray:
    """Mixture weights under classifier-free guidance ``s``: ``w^s prior^(1-s)`` (normalised;
    the prior is uniform over the training treatments), as guidance mixes the conditional and
    unconditional densities geometrically. ``s = 0`` ignores the images: every training
    treatment alike, no kernel-ridge component (whose mean comes from the images)."""
    prior = np.r_[np.full(n_classes, 1.0 / n_classes), 0.0]
    if guidance == 0:
        return prior
    if guidance == 1:
        return w
    with np.errstate(divide="ignore"):
        logw = guidance * np.log(w) + (1 - guidance) * np.log(np.where(prior > 0, prior, 1.0))
    logw = np.where(np.isfinite(logw), logw, -np.inf)
    out = np.exp(logw - logw.max())
    return out / out.sum()


def _component_libraries(model: PhenoSeqModel, head, c: int, m: np.ndarray) -> np.ndarray:
    """Library sizes of a component: its treatment's training wells', or (kernel ridge) those
    of the training well nearest to the well."""
    if c < head.n_classes:
        return np.concatenate([library_pool(model, g) for g in head.class_groups[c]])
    return library_pool(model, nearest_training_group(model, model.conditioner.represent(m)[0]))


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
        if model.conditioner is not None:
            z, lib, anchors = sample_well(model, cells, config.n_cells, rng, gen, config)
            lib = torch.from_numpy(lib)
        else:
            anchors = None
            z = torch.from_numpy(sample_latents(model, cells, config.n_cells, rng, gen, config))
            gi = known.get(g)
            if gi is None or not len(library_pool(model, gi)):
                gi = nearest_training_group(model, condition_embedding(model, cells, rng))
            lib = torch.from_numpy(rng.choice(library_pool(model, gi), size=config.n_cells))
        x, log1p = decode(model, z, lib, gen)
        x = anchor(x, anchors)  # anchored kinds only (no log1p view to update)
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
