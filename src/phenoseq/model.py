"""The user-facing model: AnnData in, AnnData out (train, generate, save, load).

``PhenoSeqModel`` sits above the pure networks of :mod:`phenoseq.nn` and the loop of
:mod:`phenoseq.train`, as scvi-tools' model sits above its module and training plan: it registers
and validates the data once (genes, features, scaler, groups), sizes the networks from what was
registered, and refuses later data whose genes or features differ.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import __version__
from . import _keys as K
from .config import InputConfig
from .data import load_paired
from .data.expression import BLOCK_ROWS
from .data.morphology import tidy_obs
from .data.normalize import MIN_CONTROLS, control_standardize
from .data.pairing import PairedData, group_ids, with_key_aliases
from .data.store import BlockShuffleBuffer, InMemoryGroupStore, sample_set
from .errors import InputError
from .evaluate.profiles import GroupSums
from .evaluate.space import dense, log1p_view, normalize_log1p
from .io import atomic_path, sha256_file
from .nn import (
    EMA,
    ConditionalDiffusion,
    ConditionEncoder,
    Denoiser,
    ExpressionAutoencoder,
    make_scheduler,
    sample_nb,
)
from .train import (
    Checkpointer,
    Phase,
    TrainConfig,
    TrainState,
    autocast,
    init_distributed,
    resolve_device,
    run_phase,
    set_seed,
    shard,
    to_device,
)
from .writers import H5adWriter

Kind = Literal["counts", "continuous", "embedding"]
SamplerName = Literal["dpmpp_2m", "ddim", "ddpm"]


@dataclass(frozen=True)
class ModelConfig:
    """Every constructor argument of the networks (stored in the model directory)."""

    n_latent: int = 64
    ae_hidden: int = 256
    ae_layers: int = 2
    ae_dropout: float = 0.1
    d_model: int = 128
    cond_layers: int = 2
    cond_heads: int = 4
    n_tokens: int = 8
    width: int = 256
    depth: int = 3
    use_cross_attention: bool = False
    prediction_type: str = "v_prediction"
    n_train_timesteps: int = 1000
    cond_drop_prob: float = 0.1
    n_top_genes: int | None = None
    # morphology normalisation: z-score against the control cells of each batch (this obs
    # column); "auto" = the split's replicate column when every batch has control cells
    batch_key: str | None = None


@dataclass
class Registry:
    """What was registered from the training data; everything needed to use the model later."""

    kind: Kind
    genes: list[str]
    features: list[str]
    feature_mean: np.ndarray  # "n_features"
    feature_std: np.ndarray
    target_mean: np.ndarray  # per-gene standardisation of continuous targets ("n_genes")
    target_std: np.ndarray
    pair_key: list[str]
    label_key: str
    control: str | None
    split: dict
    group_names: list[str]  # every group seen in training data (all roles)
    group_labels: list[str]
    group_roles: list[str]
    inputs: dict
    batch_key: str | None = None  # per-batch control normalisation of morphology (None: global)


# ----------------------------------------------------------------------------------------------
# registration: data -> arrays (pure functions)
# ----------------------------------------------------------------------------------------------


def expression_arrays(
    adata: ad.AnnData | np.ndarray | sp.spmatrix, kind: Kind
) -> dict[str, np.ndarray]:
    """The model's view of expression rows (an AnnData or its ``X``): ``log1p`` input, raw
    ``values`` and ``library``."""
    values = dense(adata.X if isinstance(adata, ad.AnnData) else adata).astype(np.float32)
    library = values.sum(axis=1) if kind == "counts" else np.ones(len(values))
    return {
        "values": values,
        "log1p": log1p_view(values, kind).astype(np.float32),
        "library": library.astype(np.float32),
    }


def expression_blocks(
    adata: ad.AnnData, genes: list[str] | None = None, size: int | None = None
) -> Iterator[tuple[int, np.ndarray | sp.spmatrix]]:
    """``(first row, X[block][:, genes])`` for consecutive row blocks of ``adata`` (default
    ``BLOCK_ROWS`` rows); a backed AnnData is read from disk one block at a time, so memory is
    bounded by a block."""
    cols = None if genes is None else adata.var_names.get_indexer(genes)
    size = size or block_rows(adata.n_vars)
    for lo in range(0, adata.n_obs, size):
        x = adata.X[lo : lo + size]
        yield lo, (x if cols is None else x[:, cols])


def block_rows(n_cols: int) -> int:
    """Rows per block: ``BLOCK_ROWS``, fewer for wide matrices (a dense float32 block stays
    under 64 MB, so 36,000 genes read ~460 rows at a time)."""
    return int(max(64, min(BLOCK_ROWS, (64 << 20) // (4 * max(n_cols, 1)))))


def column_moments(
    adata: ad.AnnData,
    rows: np.ndarray,
    kind: Kind,
    view: str = "log1p",
    genes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and (population) variance of ``expression_arrays(...)[view]`` over the rows
    where ``rows`` is true, accumulated block by block in float64."""  # fmt: skip
    n, total, sq = 0, 0.0, 0.0
    for lo, x in expression_blocks(adata, genes):
        keep = rows[lo : lo + x.shape[0]]
        if keep.any():
            v = expression_arrays(x[keep], kind)[view].astype(np.float64)
            n, total, sq = n + len(v), total + v.sum(axis=0), sq + (v * v).sum(axis=0)
    mean = total / max(n, 1)
    return mean, np.maximum(sq / max(n, 1) - mean * mean, 0.0)


def top_variable_genes(variance: np.ndarray, n_top: int) -> np.ndarray:
    """Indices of the ``n_top`` genes with the largest variance (of log1p), in original order."""
    return np.sort(np.argsort(-variance, kind="stable")[:n_top])


def fit_scaler(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (std of constant features set to 1)."""
    return _scaler(x.mean(axis=0), x.std(axis=0))


def _scaler(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


class PhenoSeqModel:
    """Image-conditioned latent diffusion over single-cell expression.

    Build with :meth:`from_paired` (registers the data), then :meth:`train`; or :meth:`load`.
    """

    def __init__(self, registry: Registry, config: ModelConfig, train_config: TrainConfig):
        self.registry, self.config, self.train_config = registry, config, train_config
        reg, cfg = registry, config
        n_genes, n_feat = len(reg.genes), len(reg.features)
        likelihood = {"counts": "nb", "continuous": "gaussian", "embedding": "identity"}[reg.kind]
        n_latent = n_genes if reg.kind == "embedding" else cfg.n_latent
        with torch.random.fork_rng(devices=[]):  # same seed, same initial weights
            torch.manual_seed(train_config.seed)
            self._build(n_genes, n_feat, n_latent, likelihood)
        self.n_latent = n_latent
        self.latent_mean = torch.zeros(n_latent)
        self.latent_std = torch.ones(n_latent)
        # per training group: pseudo-bulk (log1p mean), condition embedding, library sizes
        self.group_stats: dict[str, np.ndarray] = {}
        self.history: dict = {}
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> PhenoSeqModel:
        """Move the networks (and EMA) to ``device`` for training and sampling; data stays on the
        host and is copied per batch (pinned, non-blocking on CUDA); outputs come back as numpy."""
        self.device = torch.device(device)
        self.autoencoder.to(self.device)
        self.diffusion.to(self.device)
        self.ema.to(self.device)
        return self

    def _dev(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        return to_device(torch.as_tensor(x), self.device)

    def _build(self, n_genes: int, n_feat: int, n_latent: int, likelihood: str) -> None:
        cfg = self.config
        self.autoencoder = ExpressionAutoencoder(
            n_genes, n_latent, cfg.ae_hidden, cfg.ae_layers, likelihood, cfg.ae_dropout
        )
        encoder = ConditionEncoder(
            n_feat, cfg.d_model, cfg.cond_heads, cfg.cond_layers, cfg.n_tokens
        )
        denoiser = Denoiser(
            n_latent,
            cfg.d_model,
            cfg.width,
            cfg.depth,
            0.0,
            cfg.use_cross_attention,
            cfg.cond_heads,
        )
        self.diffusion = ConditionalDiffusion(
            denoiser, encoder, cfg.prediction_type, cfg.n_train_timesteps, cfg.cond_drop_prob
        )
        self.ema = EMA(self.diffusion, decay=self.train_config.ema_decay)

    # ------------------------------------------------------------------ registration
    @classmethod
    def from_paired(
        cls,
        paired: PairedData,
        config: ModelConfig | None = None,
        train_config: TrainConfig | None = None,
        inputs: dict | None = None,
    ) -> PhenoSeqModel:
        """Register paired data: genes, features, feature scaler (train rows, or controls)."""
        config, train_config = config or ModelConfig(), train_config or TrainConfig()
        kind = paired.expression.uns.get(K.UNS, {}).get(K.EXPRESSION_KIND, "counts")
        train_groups = set(paired.split.groups("train")) & set(paired.shared)
        if not train_groups:
            raise InputError("no training group is shared by both modalities.", "check the split")
        genes = list(paired.expression.var_names)
        if config.n_top_genes is not None and config.n_top_genes < len(genes):
            rows = paired.expression.obs[K.GROUP].isin(train_groups).to_numpy()
            _, var = column_moments(paired.expression, rows, kind)
            genes = [genes[i] for i in top_variable_genes(var, config.n_top_genes)]
        morph = paired.morphology
        in_train = morph.obs[K.GROUP].isin(train_groups).to_numpy()
        basis = in_train
        if paired.control is not None:
            ctrl = (morph.obs[K.GROUP].map(paired.groups["is_control"]) == True).to_numpy()  # noqa: E712
            basis = in_train & ctrl if (in_train & ctrl).sum() >= 2 else in_train
        f_mean, f_std = fit_scaler(dense(morph.X)[basis])
        batch_key = _batch_key(config.batch_key, paired)
        g = paired.groups
        registry = Registry(
            kind=kind, genes=genes, features=list(morph.var_names),
            feature_mean=f_mean, feature_std=f_std,
            target_mean=np.zeros(len(genes), np.float32),
            target_std=np.ones(len(genes), np.float32),
            pair_key=list(paired.pair_key), label_key=paired.label_key, control=paired.control,
            split=paired.split.to_dict(), group_names=g.index.tolist(),
            group_labels=g["label"].astype(str).tolist(), group_roles=g["role"].tolist(),
            inputs=inputs or {}, batch_key=batch_key,
        )  # fmt: skip
        return cls(registry, config, train_config)

    # ------------------------------------------------------------------ data views
    def normalize_features(self, morph: ad.AnnData) -> np.ndarray:
        """Scaled features ``"n_cells n_features"``, refusing data whose features differ."""
        missing = [f for f in self.registry.features if f not in morph.var_names]
        if missing:
            raise InputError(
                f"morphology lacks {len(missing)} of the model's {len(self.registry.features)} "
                f"features, e.g. {missing[:3]}.",
                "featurize the new data exactly as the training data (same feature set)",
            )
        reg = self.registry
        x = dense(morph[:, reg.features].X).astype(np.float32)
        if reg.batch_key is None:
            return (x - reg.feature_mean) / reg.feature_std
        for col in (reg.batch_key, reg.label_key):
            if col not in morph.obs:
                raise InputError(
                    f"morphology has no '{col}' column; the model normalises features per "
                    f"'{reg.batch_key}' against its '{reg.control}' cells.",
                    f"add the '{col}' column (e.g. with --platemap)",
                )
        is_control = (morph.obs[reg.label_key].astype(str) == reg.control).to_numpy()
        return control_standardize(x, morph.obs[reg.batch_key].to_numpy(), is_control,
                                   reg.feature_std, reg.batch_key, str(reg.control))  # fmt: skip

    def _expression(self, expr: ad.AnnData) -> dict[str, np.ndarray]:
        missing = [g for g in self.registry.genes if g not in expr.var_names]
        if missing:
            raise InputError(
                f"expression lacks {len(missing)} of the model's genes, e.g. {missing[:3]}.",
                "use data with the training genes",
            )
        return self._arrays(expr[:, self.registry.genes].X)

    def _arrays(self, x: np.ndarray | sp.spmatrix) -> dict[str, np.ndarray]:
        """Model arrays of expression rows ``x`` (columns = the model's genes)."""
        arrays = expression_arrays(x, self.registry.kind)
        if self.registry.kind != "counts":
            arrays["log1p"] = (
                arrays["values"] - self.registry.target_mean
            ) / self.registry.target_std
        return arrays

    # ------------------------------------------------------------------ training
    def train(
        self,
        paired: PairedData,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        on_step=None,
    ) -> TrainState:
        """Fit the autoencoder, then the conditional diffusion on its latents.

        ``checkpoint_dir`` receives a resumable state every ``checkpoint_every`` steps;
        ``resume=True`` continues from it (same seed -> the same weights as an uninterrupted run).
        """
        cfg, reg = self.train_config, self.registry
        start = time.monotonic()
        set_seed(cfg.seed)
        self.to(resolve_device(cfg.device))
        name_to_idx = {g: i for i, g in enumerate(reg.group_names)}
        m_groups = paired.morphology.obs[K.GROUP].map(name_to_idx).to_numpy()
        e_groups = paired.expression.obs[K.GROUP].map(name_to_idx).to_numpy()
        train_idx = [name_to_idx[g] for g in paired.split.groups("train") if g in paired.shared]
        val_idx = [name_to_idx[g] for g in paired.split.groups("val") if g in paired.shared]
        if reg.kind != "counts":
            mean, var = column_moments(paired.expression, np.isin(e_groups, train_idx), reg.kind,
                                       "values", reg.genes)  # fmt: skip
            reg.target_mean, reg.target_std = _scaler(mean, np.sqrt(var))
        # backed (on-disk) expression is read in blocks; otherwise the arrays live in memory
        expr = paired.expression
        if not expr.isbacked:
            expr = self._expression(expr)
        morph_x = self.normalize_features(paired.morphology)
        ckpt = Checkpointer(checkpoint_dir)
        state = ckpt.read_state() if resume and ckpt.exists() else TrainState()
        budget = cfg.max_minutes * 60 if cfg.max_minutes else None
        total = max(1, (cfg.ae_steps if reg.kind != "embedding" else 0) + cfg.max_steps)

        def deadline(share: float) -> float | None:
            return None if budget is None else start + budget * share

        if reg.kind != "embedding" and cfg.ae_steps > 0:  # ae_steps=0: a pre-fitted one
            ae_phase = self._autoencoder_phase(expr, e_groups, train_idx)
            if "autoencoder" in state.done:
                ckpt.load_modules(ae_phase.modules)
            else:
                share = cfg.ae_steps / total
                state = run_phase(ae_phase, cfg, state, ckpt, cfg.seed, deadline(share),
                                  on_step, progress)  # fmt: skip
        z, bulk, library = self._encode_all(expr, e_groups, train_idx, progress)
        store = InMemoryGroupStore(morph_x, m_groups, z, e_groups, train_idx)
        val_store = InMemoryGroupStore(morph_x, m_groups, z, e_groups, val_idx) if val_idx else None
        diff_phase = self._diffusion_phase(store, val_store)
        state.stopped_early = False
        state = run_phase(
            diff_phase, cfg, state, ckpt, cfg.seed + 1, deadline(0.97), on_step, progress
        )
        self._raw_diffusion = {k: v.clone() for k, v in self.diffusion.state_dict().items()}
        self.ema.copy_to(self.diffusion)  # sampling uses the EMA weights
        self._summarize_groups(bulk, library, morph_x, m_groups, e_groups)
        self.history = state.history | {"stopped_early": state.stopped_early,
                                        "seconds": time.monotonic() - start}  # fmt: skip
        return state

    def _autoencoder_phase(self, expr: dict | ad.AnnData, e_groups, train_idx) -> Phase:
        """Random training cells: from the arrays in memory, or (backed AnnData) from a buffer
        of blocks read from disk (:class:`~phenoseq.data.store.BlockShuffleBuffer`)."""
        cfg, ae = self.train_config, self.autoencoder
        rows = np.flatnonzero(np.isin(e_groups, train_idx))
        tkey = "values" if self.registry.kind == "counts" else "log1p"
        if isinstance(expr, ad.AnnData):
            cols = expr.var_names.get_indexer(self.registry.genes)
            keys = ("log1p", tkey, "library")
            buffer = BlockShuffleBuffer(
                lambda lo, hi: {k: v for k, v in self._arrays(expr.X[lo:hi][:, cols]).items()
                                if k in keys}, rows, np.random.default_rng([cfg.seed, 1]),
            )  # fmt: skip

            def batch(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
                b = buffer.batch(rng, cfg.batch_size)
                return tuple(self._dev(b[k][shard(cfg.batch_size)]) for k in keys)
        else:
            x_in, target, lib = (torch.from_numpy(expr[k]) for k in ("log1p", tkey, "library"))

            def batch(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
                idx = torch.from_numpy(rng.choice(rows, size=cfg.batch_size))
                idx = idx[shard(cfg.batch_size)]
                return self._dev(x_in[idx]), self._dev(target[idx]), self._dev(lib[idx])

        def loss(rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor:
            return ae.loss(*batch(rng)).loss

        params = [p for p in ae.parameters() if p.requires_grad]
        return Phase("autoencoder", {"autoencoder": ae}, params, loss, cfg.ae_steps, cfg.ae_lr)

    def _diffusion_phase(self, store: InMemoryGroupStore, val_store) -> Phase:
        cfg, diff = self.train_config, self.diffusion

        def batch_loss(source, rng, gen, rows: slice | None = None) -> torch.Tensor:
            b = source.pair_batch(rng, cfg.batch_size, cfg.set_size, cfg.targets_per_set)
            return diff.loss(self._dev(b.target), self._dev(b.cells), None, gen,
                             self._dev(b.set_index), rows)  # fmt: skip

        def loss(rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor:
            return batch_loss(store, rng, gen, shard(cfg.batch_size))

        def val_loss() -> float:
            rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
            diff.eval()
            with torch.no_grad():
                vals = [batch_loss(val_store, rng, gen).item() for _ in range(4)]
            return float(np.mean(vals))

        return Phase(
            "diffusion", {"diffusion": diff, "autoencoder": self.autoencoder},
            list(diff.parameters()), loss, cfg.max_steps, cfg.lr,
            val_loss if val_store is not None else None, self.ema, diff,
        )  # fmt: skip

    @torch.no_grad()
    def _encode_all(self, expr: dict | ad.AnnData, e_groups, train_idx, progress: bool = False):
        """One pass over every expression row (arrays in memory, or a backed AnnData block by
        block): standardised latents (statistics from the training rows), per-group pseudo-bulk
        of log1p, and library sizes. Returns ``(z, bulk, library)``."""
        self.autoencoder.eval()
        n_groups, n_genes = len(self.registry.group_names), len(self.registry.genes)
        bulk, zs, libs = GroupSums(n_groups, n_genes), [], []
        if isinstance(expr, ad.AnnData):
            blocks = (
                (lo, self._arrays(x)) for lo, x in expression_blocks(expr, self.registry.genes)
            )
            n_obs = expr.n_obs
        else:
            n_obs, size = len(expr["log1p"]), block_rows(n_genes)
            blocks = ((lo, {k: v[lo : lo + size] for k, v in expr.items()})
                      for lo in range(0, n_obs, size))  # fmt: skip
        bar = tqdm(total=n_obs, desc="encode", unit="cells", disable=not progress or n_obs < 1e5)
        for lo, a in blocks:
            zs.append(self.autoencoder.encode(self._dev(a["log1p"])).cpu().numpy())
            libs.append(a["library"])
            bulk.add(a["log1p"], e_groups[lo : lo + len(a["log1p"])])
            bar.update(len(a["log1p"]))
        bar.close()
        z = np.concatenate(zs).astype(np.float32)
        train_z = z[np.isin(e_groups, train_idx)]
        self.latent_mean = torch.from_numpy(train_z.mean(axis=0))
        self.latent_std = torch.from_numpy(np.maximum(train_z.std(axis=0), 1e-4))
        z = ((torch.from_numpy(z) - self.latent_mean) / self.latent_std).numpy()
        # bulk: NaN for groups without expression rows
        return z, bulk.means().astype(np.float32), np.concatenate(libs).astype(np.float32)

    @torch.no_grad()
    def _summarize_groups(self, bulk, library, morph_x, m_groups, e_groups) -> None:
        """Per registered group: pseudo-bulk, condition embedding, mean morphology, library
        sizes."""
        n = len(self.registry.group_names)
        rng = np.random.default_rng(self.train_config.seed)
        emb = np.full((n, self.config.d_model), np.nan, np.float32)
        morph_mean = np.full((n, morph_x.shape[1]), np.nan, np.float32)  # for OOD distances
        libs, offsets = [], [0]
        order = np.argsort(e_groups, kind="stable")
        starts = np.searchsorted(e_groups[order], np.arange(n + 1))
        for gi in range(n):
            e_rows, m_rows = order[starts[gi] : starts[gi + 1]], np.flatnonzero(m_groups == gi)
            if len(m_rows):
                emb[gi] = self.condition_embedding(morph_x[m_rows], rng)
                morph_mean[gi] = morph_x[m_rows].mean(axis=0)
            lib = library[e_rows[:1000]]
            libs.append(lib)
            offsets.append(offsets[-1] + len(lib))
        self.group_stats = {
            "pseudobulk": bulk, "embedding": emb, "morph_mean": morph_mean,
            "library": np.concatenate(libs).astype(np.float32),
            "library_offsets": np.asarray(offsets, np.int64),
        }  # fmt: skip

    @torch.no_grad()
    def condition_embedding(self, cells: np.ndarray, rng: np.random.Generator, n_sets: int = 8):
        """Mean pooled condition embedding ``"d_model"`` of ``n_sets`` random sets of ``cells``."""
        self.diffusion.eval()
        idx = np.stack([sample_set(rng, np.arange(len(cells)), self.train_config.set_size)
                        for _ in range(n_sets)])  # fmt: skip
        pooled, _ = self.diffusion.encode_condition(self._dev(cells[idx]), None)
        return pooled.mean(dim=0).cpu().numpy()

    # ------------------------------------------------------------------ generation
    def _library_pool(self, gi: int) -> np.ndarray:
        off = self.group_stats["library_offsets"]
        return self.group_stats["library"][off[gi] : off[gi + 1]]

    def _nearest_training_group(self, embedding: np.ndarray) -> int:
        reg = self.registry
        cand = [i for i, r in enumerate(reg.group_roles)
                if r == "train" and len(self._library_pool(i))]  # fmt: skip
        d = np.linalg.norm(self.group_stats["embedding"][cand] - embedding, axis=1)
        return cand[int(np.argmin(d))]

    @torch.no_grad()
    def decode(self, z_std: torch.Tensor, library: torch.Tensor, generator: torch.Generator):
        """Latents to ``(X, log1p)``: NB counts (counts kind) or values (continuous, embedding)."""
        dev = self.device
        z = self._dev(z_std) * self.latent_std.to(dev) + self.latent_mean.to(dev)
        reg = self.registry
        if reg.kind == "counts":  # the NB draws stay on the host: same numbers on every device
            out = self.autoencoder.decode(z, self._dev(library))
            counts = sample_nb(out["mu"].cpu(), out["theta"].cpu(), generator)
            counts = counts.numpy().astype(np.float32)
            return counts, normalize_log1p(counts).astype(np.float32)
        mean = z if reg.kind == "embedding" else self.autoencoder.decode(z, None)["mean"]
        values = mean.cpu().numpy() * reg.target_std + reg.target_mean
        return values.astype(np.float32), None

    @torch.no_grad()
    def sample_latents(
        self,
        cells: np.ndarray,
        n_cells: int,
        rng: np.random.Generator,
        generator: torch.Generator,
        n_steps: int = 20,
        guidance: float = 1.0,
        sampler: SamplerName = "dpmpp_2m",
        batch_size: int = 1024,
        set_size: int | None = None,
    ) -> np.ndarray:
        """``n_cells`` standardised latents ``"n_cells n_latent"`` for one group's cells.

        Every generated cell is conditioned on its own random set of ``set_size`` of ``cells``
        (default: the training set size), so the spread of the output reflects the group, not
        one set.
        """
        n_set = set_size or self.train_config.set_size
        self.diffusion.eval()
        scheduler = make_scheduler(sampler, n_train_timesteps=self.config.n_train_timesteps,
                                   prediction_type=self.config.prediction_type)  # fmt: skip
        out = []
        rows = np.arange(len(cells))
        for lo in range(0, n_cells, batch_size):
            b = min(batch_size, n_cells - lo)
            idx = np.stack([sample_set(rng, rows, n_set) for _ in range(b)])
            pooled, tokens = self.diffusion.encode_condition(self._dev(cells[idx]), None)
            out.append(
                self.diffusion.sample(pooled, tokens, scheduler, n_steps, guidance, generator)
            )
        return torch.cat(out).cpu().numpy()

    @torch.no_grad()
    def generate(
        self,
        morphology: ad.AnnData,
        n_cells: int = 100,
        n_steps: int = 20,
        guidance: float = 1.0,
        sampler: SamplerName = "dpmpp_2m",
        seed: int = 0,
        progress: bool = True,
        set_size: int | None = None,
    ) -> ad.AnnData:
        """Generate ``n_cells`` expression profiles for every pairing group of ``morphology``.

        ``set_size``: morphology cells each generated cell is conditioned on (default: the
        training set size). :meth:`generate_to` writes the same cells to a file group by group
        (bounded memory).

        Returns
        -------
        AnnData ``"n_groups*n_cells n_genes"``: ``X`` counts (or values), ``layers['log1p']``
        (counts kind), ``obsm['X_phenoseq']`` latents, obs columns constant within a group plus
        ``phenoseq_group``, ``uns['phenoseq']`` provenance.
        """
        obs, blocks = self.generate_blocks(morphology, n_cells, n_steps, guidance, sampler, seed,
                                       progress, set_size)  # fmt: skip
        xs, logs, zs = zip(*blocks, strict=True)
        x = np.concatenate(xs)
        out = ad.AnnData(
            X=sp.csr_matrix(x) if self.registry.kind == "counts" else x,
            obs=obs,
            var=pd.DataFrame(index=pd.Index(self.registry.genes)),
        )
        if self.registry.kind == "counts":
            out.layers[K.LOG1P] = np.concatenate(logs)
        out.obsm[K.LATENT] = np.concatenate(zs)
        out.uns[K.UNS] = self._generation_uns(n_cells, n_steps, guidance, sampler, seed, set_size)
        return out

    @torch.no_grad()
    def generate_to(
        self,
        path: str | Path,
        morphology: ad.AnnData,
        n_cells: int = 100,
        n_steps: int = 20,
        guidance: float = 1.0,
        sampler: SamplerName = "dpmpp_2m",
        seed: int = 0,
        progress: bool = True,
        set_size: int | None = None,
        uns: dict | None = None,
    ) -> Path:
        """:meth:`generate` straight into an ``.h5ad``, one group at a time (memory: one group's
        cells, whatever the number of groups); atomic. ``uns`` is added to the provenance."""
        obs, blocks = self.generate_blocks(morphology, n_cells, n_steps, guidance, sampler, seed,
                                       progress, set_size)  # fmt: skip
        counts = self.registry.kind == "counts"
        meta = self._generation_uns(n_cells, n_steps, guidance, sampler, seed, set_size)
        var = pd.DataFrame(index=pd.Index(self.registry.genes))
        with atomic_path(path) as tmp, H5adWriter(
            tmp, obs, var, {K.UNS: meta | (uns or {})}, sparse=counts,
            obsm={K.LATENT: self.n_latent}, layers={K.LOG1P: len(var)} if counts else None,
        ) as w:  # fmt: skip
            for x, log1p, z in blocks:
                w.append(x, obsm={K.LATENT: z}, layers={K.LOG1P: log1p} if counts else None)
        return Path(path)

    def _generation_uns(self, n_cells, n_steps, guidance, sampler, seed, set_size) -> dict:
        return {
            "sampler": sampler, "n_steps": n_steps, "guidance": guidance, "seed": seed,
            "n_cells_per_group": n_cells, "expression_kind": self.registry.kind,
            "version": __version__, "set_size": set_size or self.train_config.set_size,
        }  # fmt: skip

    def generate_blocks(
        self,
        morphology: ad.AnnData,
        n_cells: int = 100,
        n_steps: int = 20,
        guidance: float = 1.0,
        sampler: SamplerName = "dpmpp_2m",
        seed: int = 0,
        progress: bool = True,
        set_size: int | None = None,
    ) -> tuple[pd.DataFrame, Iterator[tuple[np.ndarray, ...]]]:
        """What :meth:`generate` and :meth:`generate_to` are built on: the obs of every
        generated cell (known up front) and a lazy iterator of ``(X, log1p, latent)`` blocks,
        one per group in obs order (``log1p`` is None for continuous / embedding targets), so
        a caller can reduce or write each group's cells before the next is sampled."""
        if n_cells < 1:
            raise InputError(
                f"--n-cells must be at least 1 (got {n_cells}).", "pass a positive number"
            )
        reg = self.registry
        obs = with_key_aliases(morphology.obs, (*reg.pair_key, reg.label_key, reg.batch_key))
        if obs is not morphology.obs:  # pycytominer-prefixed keys: alias columns, data shared
            morphology = ad.AnnData(morphology.X, obs=obs, var=morphology.var)
        morph_x = self.normalize_features(morphology)
        groups = group_ids(morphology.obs, reg.pair_key, "morphology").to_numpy()
        order = sorted(set(groups))
        rows_of = {g: np.flatnonzero(groups == g) for g in order}
        obs = tidy_obs(pd.concat([_constant_obs(morphology.obs.iloc[rows_of[g]], g, n_cells)
                                  for g in order], ignore_index=True))  # fmt: skip
        obs.index = [f"gen{i}" for i in range(len(obs))]

        def blocks() -> Iterator[tuple[np.ndarray, ...]]:
            rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
            known = {g: i for i, g in enumerate(reg.group_names)}
            for g in tqdm(order, desc="generate", disable=not progress):
                rows = rows_of[g]
                z = self.sample_latents(morph_x[rows], n_cells, rng, gen, n_steps, guidance,
                                        sampler, set_size=set_size)  # fmt: skip
                z = torch.from_numpy(z)
                gi = known.get(g)
                if gi is None or not len(self._library_pool(gi)):
                    gi = self._nearest_training_group(self.condition_embedding(morph_x[rows], rng))
                lib = torch.from_numpy(rng.choice(self._library_pool(gi), size=n_cells))
                x, log1p = self.decode(z, lib, gen)
                latent = (z * self.latent_std + self.latent_mean).numpy().astype(np.float32)
                yield x, log1p, latent

        return obs, blocks()

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Write the model directory atomically: safetensors weights + EMA, JSON config."""
        folder = Path(folder)
        raw = getattr(self, "_raw_diffusion", None) or self.diffusion.state_dict()
        with atomic_path(folder, is_dir=True) as tmp:
            weights = {f"autoencoder.{k}": v for k, v in self.autoencoder.state_dict().items()}
            weights |= {f"diffusion.{k}": v for k, v in raw.items()}
            weights |= {"latent_mean": self.latent_mean, "latent_std": self.latent_std}
            save_file(_contiguous(weights), tmp / "weights.safetensors")
            ema = {f"diffusion.{k}": v for k, v in self.diffusion.state_dict().items()}
            save_file(_contiguous(ema), tmp / "ema.safetensors")
            stats = {
                k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.group_stats.items()
            }
            save_file(stats, tmp / "groups.safetensors")
            doc = {
                "phenoseq_version": __version__,
                "model_config": asdict(self.config),
                "train_config": asdict(self.train_config),
                "registry": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                             for k, v in asdict(self.registry).items()},
                "history": self.history,
            }  # fmt: skip
            (tmp / "config.json").write_text(json.dumps(doc, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> PhenoSeqModel:
        """Load a model directory written by :meth:`save` (sampling uses the EMA weights)."""
        folder = Path(folder)
        needed = ["config.json", "weights.safetensors", "ema.safetensors", "groups.safetensors"]
        missing = [n for n in needed if not (folder / n).is_file()]
        if missing:
            raise InputError(f"is not a complete PhenoSeq model directory (missing {missing}).",
                             "pass the --out folder of `phenoseq train`", folder)  # fmt: skip
        try:
            doc = json.loads((folder / "config.json").read_text())
            r = doc["registry"]
            for k in ("feature_mean", "feature_std", "target_mean", "target_std"):
                r[k] = np.asarray(r[k], np.float32)
            model = cls(Registry(**r), ModelConfig(**doc["model_config"]),
                        TrainConfig(**doc["train_config"]))  # fmt: skip
            weights = load_file(folder / "weights.safetensors")
            ema = load_file(folder / "ema.safetensors")
            groups = load_file(folder / "groups.safetensors")
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise InputError(f"model directory cannot be read ({type(exc).__name__}: {exc}).",
                             "re-run `phenoseq train`", folder) from exc  # fmt: skip
        model.autoencoder.load_state_dict(_strip(weights, "autoencoder."))
        model.diffusion.load_state_dict(_strip(ema, "diffusion."))
        model._raw_diffusion = _strip(weights, "diffusion.")
        model.latent_mean, model.latent_std = weights["latent_mean"], weights["latent_std"]
        model.group_stats = {k: v.numpy() for k, v in groups.items()}
        model.history = doc.get("history", {})
        model.autoencoder.eval()
        model.diffusion.eval()
        return model


def _batch_key(requested: str | None, paired: PairedData) -> str | None:
    """The obs column to normalise morphology per batch by, or None for one global scaler."""
    if requested in (None, "none"):
        return None
    obs = paired.morphology.obs
    auto = requested == "auto"
    key = paired.split.config.replicate_key if auto else requested
    if key not in obs or paired.control is None:
        if auto:
            return None
        raise InputError(
            f"--batch-key {key}: " + ("no such morphology column." if key not in obs
                                      else "per-batch normalisation needs --control."),
            "pass an existing column and --control, or --batch-key none",
        )  # fmt: skip
    ctrl = obs[paired.label_key].astype(str) == paired.control
    per_batch = ctrl.groupby(obs[key].astype(str).to_numpy()).sum()
    if (per_batch < MIN_CONTROLS).any():
        if auto:
            return None
        bad = per_batch.index[per_batch < MIN_CONTROLS][:3].tolist()
        raise InputError(f"--batch-key {key}: batch(es) {bad} have no '{paired.control}' cells.",
                         "pass a batch column whose batches all hold controls, or "
                         "--batch-key none")  # fmt: skip
    return key


def _strip(d: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in d.items() if k.startswith(prefix)}


def _contiguous(d: dict) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in d.items()}


def _constant_obs(obs: pd.DataFrame, group: str, n: int) -> pd.DataFrame:
    """The obs columns constant within a group, repeated ``n`` times, plus the group id."""
    const = {c: obs[c].iloc[0] for c in obs.columns if obs[c].nunique(dropna=False) == 1}
    const.pop(K.GROUP, None)
    frame = pd.DataFrame({c: [v] * n for c, v in const.items()})
    frame[K.GROUP] = group
    return frame


# ----------------------------------------------------------------------------------------------
# the library functions the commands wrap
# ----------------------------------------------------------------------------------------------


def _checkpoint_dir(out: Path) -> Path:
    return out.with_name(f".{out.name}.checkpoint")


def train_model(
    inputs: InputConfig,
    out: str | Path,
    config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    on_step=None,
) -> PhenoSeqModel:
    """Read and pair the inputs, train a model and write its directory to ``out`` atomically.

    A resumable state lives in ``.<out>.checkpoint`` beside ``out`` while training runs and is
    removed when the model directory is complete; ``resume=True`` continues from it.
    """
    out = Path(out)
    tc = train_config or TrainConfig()
    device = resolve_device(tc.device)
    autocast(device, tc.precision)  # checks --precision before any data is read
    if device.type == "cuda":
        torch.cuda.set_device(device)
    rank, size = init_distributed(str(device))
    if tc.batch_size % size:
        raise InputError(f"--batch-size {tc.batch_size} does not split over {size} processes.",
                         f"use a multiple of {size}")  # fmt: skip
    paired = load_paired(inputs)
    record = inputs.to_dict() | {  # absolute paths: `phenoseq evaluate` re-reads them
        k: str(Path(v).resolve()) for k, v in inputs.to_dict().items()
        if k in ("morphology", "expression", "platemap") and v is not None
    }  # fmt: skip
    record["sha256"] = {k: sha256_file(getattr(inputs, k)) for k in ("morphology", "expression")}
    model = PhenoSeqModel.from_paired(paired, config, train_config, record)
    ckpt = _checkpoint_dir(out)
    if resume and not (ckpt / "state.json").exists():
        raise InputError(f"nothing to resume: {ckpt} does not exist.", "drop --resume", out)
    model.train(paired, ckpt, resume=resume, progress=progress, on_step=on_step)
    if rank == 0:  # one writer under torchrun
        model.save(out)
        shutil.rmtree(ckpt, ignore_errors=True)
    return model


def generate(
    model: PhenoSeqModel | str | Path,
    morphology: ad.AnnData,
    n_cells: int = 100,
    n_steps: int = 20,
    guidance: float = 1.0,
    sampler: SamplerName = "dpmpp_2m",
    seed: int = 0,
    progress: bool = True,
) -> ad.AnnData:
    """Generate expression for every pairing group (see :meth:`PhenoSeqModel.generate`)."""
    if not isinstance(model, PhenoSeqModel):
        model = PhenoSeqModel.load(model)
    return model.generate(morphology, n_cells, n_steps, guidance, sampler, seed, progress)
