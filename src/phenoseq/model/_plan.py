"""The training plan: what a batch is and which losses, for the two phases that
:func:`phenoseq.train.run_phase` drives.

1. ``autoencoder``: random training cells (from memory, or a block-shuffle buffer over a backed
   file) -> reconstruction likelihood of the expression autoencoder.
2. one pass encodes every expression cell to a standardised latent (and accumulates per-group
   pseudo-bulks and library sizes);
3. ``diffusion``: (latent of a cell, set of N morphology cells of its group) pairs drawn
   group-first -> the denoising loss with condition dropout; EMA weights.

Afterwards the per-group statistics that generation and the uncertainty use are kept on the
model (``group_stats``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import torch
from tqdm.auto import tqdm

from .. import _keys as K
from ..data.pairing import PairedData, with_key_aliases
from ..data.store import BlockShuffleBuffer, InMemoryGroupStore
from ..data.transforms import GroupSums, block_rows, column_moments, expression_blocks, scaler
from ..train import Checkpointer, Phase, TrainState, resolve_device, run_phase, set_seed, shard
from ._generate import condition_embedding
from ._mean_head import MeanHead, Wells
from ._wells import Conditioner, well_stats

if TYPE_CHECKING:
    from ._model import PhenoSeqModel


class TrainingPlan:
    """The phases of training ``model`` on ``paired`` (registered with the same model)."""

    def __init__(self, model: PhenoSeqModel, paired: PairedData):
        self.model, self.paired = model, paired
        reg = model.registry
        index = {g: i for i, g in enumerate(reg.group_names)}
        self.m_groups = paired.morphology.obs[K.GROUP].map(index).to_numpy()
        self.e_groups = paired.expression.obs[K.GROUP].map(index).to_numpy()
        shared = set(paired.shared)
        self.train_idx = [index[g] for g in paired.split.groups("train") if g in shared]
        self.val_idx = [index[g] for g in paired.split.groups("val") if g in shared]
        self.latent_means: np.ndarray | None = None  # "G k" per registered group (well mode)

    def fit(self, checkpoint_dir=None, resume: bool = False, progress: bool = True,
            on_step=None) -> TrainState:  # fmt: skip
        """Run both phases (resuming from ``checkpoint_dir`` when asked); returns the state."""
        model, cfg = self.model, self.model.train_config
        start = time.monotonic()
        set_seed(cfg.seed)
        model.to(resolve_device(cfg.device))
        kind = model.registry.expression_kind
        if kind.standardized:
            self._fit_target_scaler()
        expr = self._expression()
        morph_x = model.normalize_features(self.paired.morphology)
        ckpt = Checkpointer(checkpoint_dir)
        state = ckpt.read_state() if resume and ckpt.exists() else TrainState()
        budget = cfg.max_minutes * 60 if cfg.max_minutes else None
        total = max(1, (cfg.ae_steps if kind.has_autoencoder else 0) + cfg.max_steps)

        def deadline(share: float) -> float | None:
            return None if budget is None else start + budget * share

        if kind.has_autoencoder and cfg.ae_steps > 0:  # ae_steps=0: a pre-fitted one
            ae_phase = self.autoencoder_phase(expr)
            if "autoencoder" in state.done:
                ckpt.load_modules(ae_phase.modules)
            else:
                share = cfg.ae_steps / total
                state = run_phase(ae_phase, cfg, state, ckpt, cfg.seed, deadline(share), on_step,
                                  progress)  # fmt: skip
        z, bulk, library = self.encode_all(expr, progress)
        self.fit_wells(morph_x, z)
        store = InMemoryGroupStore(morph_x, self.m_groups, z, self.e_groups, self.train_idx)
        val = (InMemoryGroupStore(morph_x, self.m_groups, z, self.e_groups, self.val_idx)
               if self.val_idx else None)  # fmt: skip
        state.stopped_early = False
        state = run_phase(self.diffusion_phase(store, val), cfg, state, ckpt, cfg.seed + 1,
                          deadline(0.97), on_step, progress)  # fmt: skip
        model.finish_training()  # sampling uses the EMA weights from here on
        model.group_stats = self.group_stats(bulk, library, morph_x)
        model.history = state.history | {"stopped_early": state.stopped_early,
                                         "seconds": time.monotonic() - start}  # fmt: skip
        return state

    def _fit_target_scaler(self) -> None:
        """Per-gene mean and std of the training targets (continuous and embedding kinds)."""
        reg = self.model.registry
        rows = np.isin(self.e_groups, self.train_idx)
        mean, var = column_moments(self.paired.expression, rows,
                                   lambda x: reg.expression_kind.raw_arrays(x)["values"],
                                   reg.genes)  # fmt: skip
        reg.target_mean, reg.target_std = scaler(mean, np.sqrt(var))

    def _expression(self) -> dict[str, np.ndarray] | ad.AnnData:
        """The model arrays of every expression row, or the backed AnnData (read in blocks)."""
        expr = self.paired.expression
        if expr.isbacked:
            return expr
        reg = self.model.registry
        return reg.expression_arrays(reg.select_genes(expr).X)

    def autoencoder_phase(self, expr: dict | ad.AnnData) -> Phase:
        """Random training cells: from the arrays in memory, or (backed AnnData) from a buffer
        of blocks read from disk (:class:`~phenoseq.data.store.BlockShuffleBuffer`)."""
        model, cfg = self.model, self.model.train_config
        ae, reg = model.autoencoder, model.registry
        rows = np.flatnonzero(np.isin(self.e_groups, self.train_idx))
        keys = ("log1p", reg.expression_kind.reconstruction_target, "library")
        if isinstance(expr, ad.AnnData):
            cols = expr.var_names.get_indexer(reg.genes)
            buffer = BlockShuffleBuffer(
                lambda lo, hi: {k: v for k, v in reg.expression_arrays(expr.X[lo:hi][:, cols])
                                .items() if k in keys}, rows, np.random.default_rng([cfg.seed, 1]),
            )  # fmt: skip

            def batch(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
                b = buffer.batch(rng, cfg.batch_size)
                return tuple(model.put(b[k][shard(cfg.batch_size)]) for k in keys)
        else:
            arrays = [torch.from_numpy(expr[k]) for k in keys]

            def batch(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
                idx = torch.from_numpy(rng.choice(rows, size=cfg.batch_size))
                idx = idx[shard(cfg.batch_size)]
                return tuple(model.put(a[idx]) for a in arrays)

        def loss(rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor:
            return ae.loss(*batch(rng)).loss

        params = [p for p in ae.parameters() if p.requires_grad]
        return Phase("autoencoder", {"autoencoder": ae}, params, loss, cfg.ae_steps, cfg.ae_lr)

    def fit_wells(self, morph_x: np.ndarray, z: np.ndarray) -> None:
        """The training wells' statistics, latent means and mean head, and the conditioner that
        turns a well into the diffusion's condition (well conditions only)."""
        model, reg = self.model, self.model.registry
        if model.config.condition != "group":
            return
        stats = well_stats(morph_x, self.m_groups, len(reg.group_names), self.train_idx)
        sums = GroupSums(len(reg.group_names), z.shape[1])
        sums.add(z, self.e_groups)
        self.latent_means = sums.means()
        train = np.asarray(self.train_idx)
        head_cfg = model.config.mean_head
        if head_cfg.kind != "none":
            labels = np.asarray(reg.group_labels)[train]
            wells = Wells(stats.means[train], self.latent_means[train], labels,
                          self._compounds(labels), stats.n_cells[train], stats.cell_cov,
                          reg.control)  # fmt: skip
            model.mean_head = MeanHead.fit(wells, head_cfg, train)
        W = model.mean_head.W if model.mean_head is not None else np.eye(morph_x.shape[1])
        model.conditioner = Conditioner.fit(W, stats.means[train], model.uses_latent_mean)
        self.stats = stats

    def _compounds(self, labels: np.ndarray) -> np.ndarray:
        """The compound of every training well (held out together when the mean head's kernel
        ridge is cross-validated): the ``compound`` column when the morphology has one, else
        the treatment label."""
        obs = with_key_aliases(self.paired.morphology.obs, (K.COMPOUND,))
        if K.COMPOUND not in obs:
            return labels
        by_group = obs.groupby(K.GROUP, observed=True)[K.COMPOUND].first().astype(str)
        names = np.asarray(self.model.registry.group_names)[self.train_idx]
        return by_group.reindex(names).fillna("").to_numpy() if len(names) else labels

    def _well_inputs(self, b) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, condition)`` of a well batch: each cell's latent (minus its well's latent mean
        for residual generation) and its well's condition vector."""
        model = self.model
        mu = self.latent_means[b.groups].astype(np.float32)
        x0 = b.target - mu[b.set_index] if model.generates_residuals else b.target
        cond = model.conditioner.vector(b.cells, mu if model.uses_latent_mean else None)
        return model.put(x0), model.put(cond)

    def diffusion_phase(self, store: InMemoryGroupStore, val_store) -> Phase:
        model, cfg = self.model, self.model.train_config
        diff = model.diffusion

        def batch_loss(source, rng, gen, rows: slice | None = None) -> torch.Tensor:
            if model.config.condition == "group":
                b = source.well_batch(rng, cfg.batch_size, cfg.targets_per_set, cfg.set_size)
                x0, cond = self._well_inputs(b)
                return diff.loss(x0, cond, None, gen, model.put(b.set_index), rows)
            b = source.pair_batch(rng, cfg.batch_size, cfg.set_size, cfg.targets_per_set)
            return diff.loss(model.put(b.target), model.put(b.cells), None, gen,
                             model.put(b.set_index), rows)  # fmt: skip

        def loss(rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor:
            return batch_loss(store, rng, gen, shard(cfg.batch_size))

        def val_loss() -> float:
            rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
            diff.eval()
            with torch.no_grad():
                vals = [batch_loss(val_store, rng, gen).item() for _ in range(4)]
            return float(np.mean(vals))

        return Phase(
            "diffusion", {"diffusion": diff, "autoencoder": model.autoencoder},
            list(diff.parameters()), loss, cfg.max_steps, cfg.lr,
            val_loss if val_store is not None else None, model.ema, diff,
        )  # fmt: skip

    @torch.no_grad()
    def encode_all(self, expr: dict | ad.AnnData, progress: bool = False):
        """One pass over every expression row (arrays in memory, or a backed AnnData block by
        block): standardised latents (statistics from the training rows), per-group pseudo-bulk
        of the analysis view (log1p of counts; the values themselves for continuous and
        embedding targets), and library sizes. Returns ``(z, bulk, library)``."""
        model, reg = self.model, self.model.registry
        model.autoencoder.eval()
        bulk, zs, libs = GroupSums(len(reg.group_names), len(reg.genes)), [], []
        if isinstance(expr, ad.AnnData):
            blocks = ((lo, reg.expression_arrays(x))
                      for lo, x in expression_blocks(expr, reg.genes))  # fmt: skip
            n_obs = expr.n_obs
        else:
            n_obs, size = len(expr["log1p"]), block_rows(len(reg.genes))
            blocks = ((lo, {k: v[lo : lo + size] for k, v in expr.items()})
                      for lo in range(0, n_obs, size))  # fmt: skip
        bar = tqdm(total=n_obs, desc="encode", unit="cells", disable=not progress or n_obs < 1e5)
        for lo, a in blocks:
            zs.append(model.autoencoder.encode(model.put(a["log1p"])).cpu().numpy())
            libs.append(a["library"])
            view = a["log1p"]  # the analysis view: un-standardised for continuous / embedding
            if reg.expression_kind.standardized:
                view = view * reg.target_std + reg.target_mean
            bulk.add(view, self.e_groups[lo : lo + len(a["log1p"])])
            bar.update(len(a["log1p"]))
        bar.close()
        z = np.concatenate(zs).astype(np.float32)
        train_z = z[np.isin(self.e_groups, self.train_idx)]
        model.latent_mean = torch.from_numpy(train_z.mean(axis=0))
        model.latent_std = torch.from_numpy(np.maximum(train_z.std(axis=0), 1e-4))
        z = ((torch.from_numpy(z) - model.latent_mean) / model.latent_std).numpy()
        # bulk: NaN for groups without expression rows
        return z, bulk.means().astype(np.float32), np.concatenate(libs).astype(np.float32)

    @torch.no_grad()
    def group_stats(self, bulk, library, morph_x) -> dict[str, np.ndarray]:
        """Per registered group: pseudo-bulk, condition embedding, mean morphology, library
        sizes (at most 1,000 per group)."""
        model = self.model
        n = len(model.registry.group_names)
        rng = np.random.default_rng(model.train_config.seed)
        emb: list[np.ndarray | None] = [None] * n
        morph_mean = np.full((n, morph_x.shape[1]), np.nan, np.float32)  # for OOD distances
        libs, offsets = [], [0]
        order = np.argsort(self.e_groups, kind="stable")
        starts = np.searchsorted(self.e_groups[order], np.arange(n + 1))
        for gi in range(n):
            e_rows, m_rows = order[starts[gi] : starts[gi + 1]], np.flatnonzero(self.m_groups == gi)
            if len(m_rows):
                emb[gi] = condition_embedding(model, morph_x[m_rows], rng)
                morph_mean[gi] = morph_x[m_rows].mean(axis=0)
            lib = library[e_rows[:1000]]
            libs.append(lib)
            offsets.append(offsets[-1] + len(lib))
        width = next(len(e) for e in emb if e is not None)
        stats = {
            "pseudobulk": bulk, "morph_mean": morph_mean,
            "embedding": np.vstack([e if e is not None else np.full(width, np.nan) for e in emb])
            .astype(np.float32),
            "library": np.concatenate(libs).astype(np.float32),
            "library_offsets": np.asarray(offsets, np.int64),
        }  # fmt: skip
        if self.latent_means is not None:
            stats["latent_mean"] = self.latent_means.astype(np.float32)
        return stats
