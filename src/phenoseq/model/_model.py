"""The class users call: register, train, generate, save, load (AnnData in, AnnData out).

``PhenoSeqModel`` sits above the pure networks of :mod:`phenoseq.nn` and the loop of
:mod:`phenoseq.train`, as scvi-tools' model sits above its module and training plan: it registers
and validates the data once (genes, features, scaler, groups), sizes the networks from what was
registered, and refuses later data whose genes or features differ. The work is done in
``_registry`` (registration, data views), ``_kinds`` (what differs between expression kinds),
``_plan`` (the training phases), ``_generate`` (sampling) and ``_io`` (the model directory).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .. import _keys as K
from ..config import ModelConfig, SampleConfig, TrainConfig, override
from ..data.pairing import PairedData
from ..io import atomic_path
from ..nn import EMA, ConditionalDiffusion, ConditionEncoder, Denoiser, WellConditionEncoder
from ..train import TrainState, to_device
from ..writers import H5adWriter
from . import _generate as G
from . import _io
from ._mean_head import MeanHead
from ._plan import TrainingPlan
from ._registry import Registry, register
from ._wells import Conditioner


class PhenoSeqModel:
    """Image-conditioned latent diffusion over single-cell expression.

    Build with :meth:`from_paired` (registers the data), then :meth:`train`; or :meth:`load`.
    """

    def __init__(self, registry: Registry, config: ModelConfig, train_config: TrainConfig):
        self.registry, self.config, self.train_config = registry, config, train_config
        n_genes = len(registry.genes)
        with torch.random.fork_rng(devices=[]):  # same seed, same initial weights
            torch.manual_seed(train_config.seed)
            self._build(n_genes, len(registry.features))
        self.n_latent = registry.expression_kind.n_latent(n_genes, config)
        self.mean_head: MeanHead | None = None  # fitted on the training wells (well conditions)
        self.conditioner: Conditioner | None = None
        self.latent_mean = torch.zeros(self.n_latent)
        self.latent_std = torch.ones(self.n_latent)
        # per training group: pseudo-bulk (log1p mean), condition embedding, library sizes
        self.group_stats: dict[str, np.ndarray] = {}
        self.history: dict = {}
        self.device = torch.device("cpu")
        self._raw_diffusion: dict[str, torch.Tensor] | None = None

    @property
    def uses_latent_mean(self) -> bool:
        """Whether the condition carries the mean head's latent mean (well conditions with a
        mean head)."""
        return self.config.condition == "group" and self.config.mean_head.kind != "none"

    @property
    def generates_residuals(self) -> bool:
        """Whether the diffusion generates each cell's deviation from the mean head's latent
        mean (``residual`` with a mean head; without one there is no mean to add back)."""
        return self.config.residual and self.uses_latent_mean

    def _build(self, n_genes: int, n_feat: int) -> None:
        cfg, kind = self.config, self.registry.expression_kind
        self.autoencoder = kind.build_autoencoder(n_genes, cfg)
        n_latent = kind.n_latent(n_genes, cfg)
        if cfg.condition == "group":
            n_in = n_feat + (n_latent if self.uses_latent_mean else 0)
            encoder = WellConditionEncoder(n_in, cfg.d_model, cfg.n_tokens)
        else:
            encoder = ConditionEncoder(n_feat, cfg.d_model, cfg.cond_heads, cfg.cond_layers,
                                       cfg.n_tokens)  # fmt: skip
        denoiser = Denoiser(n_latent, cfg.d_model, cfg.width, cfg.depth, 0.0,
                            cfg.use_cross_attention, cfg.cond_heads)  # fmt: skip
        d = cfg.diffusion
        self.diffusion = ConditionalDiffusion(denoiser, encoder, d.prediction_type,
                                              d.n_train_timesteps, d.cond_drop_prob)  # fmt: skip
        self.ema = EMA(self.diffusion, decay=self.train_config.ema_decay)

    def to(self, device: torch.device | str) -> PhenoSeqModel:
        """Move the networks (and EMA) to ``device`` for training and sampling; data stays on the
        host and is copied per batch (pinned, non-blocking on CUDA); outputs come back as numpy."""
        self.device = torch.device(device)
        self.autoencoder.to(self.device)
        self.diffusion.to(self.device)
        self.ema.to(self.device)
        return self

    def put(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A host array or tensor on the model's device."""
        return to_device(torch.as_tensor(x), self.device)

    # ------------------------------------------------------------------ registration, training
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
        return cls(register(paired, config, inputs), config, train_config)

    def normalize_features(self, morph: ad.AnnData) -> np.ndarray:
        """Scaled features ``"n_cells n_features"``, refusing data whose features differ."""
        return self.registry.normalize_features(morph)

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
        return TrainingPlan(self, paired).fit(checkpoint_dir, resume, progress, on_step)

    def finish_training(self) -> None:
        """Keep the raw diffusion weights (saved beside the EMA) and sample with the EMA's."""
        self._raw_diffusion = {k: v.clone() for k, v in self.diffusion.state_dict().items()}
        self.ema.copy_to(self.diffusion)

    def raw_diffusion_state(self) -> dict[str, torch.Tensor]:
        return self._raw_diffusion or self.diffusion.state_dict()

    def keep_raw_diffusion(self, state: dict[str, torch.Tensor]) -> None:
        self._raw_diffusion = state

    # ------------------------------------------------------------------ generation
    def prepare(self, morphology: ad.AnnData | G.Conditions) -> G.Conditions:
        """New morphology read, normalised and grouped once, for one or several samplers."""
        return morphology if isinstance(morphology, G.Conditions) else G.prepare(self, morphology)

    def condition_embedding(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Mean pooled condition embedding ``"d_model"`` of random sets of ``cells``."""
        return G.condition_embedding(self, cells, rng)

    def generate_blocks(
        self,
        morphology: ad.AnnData | G.Conditions,
        config: SampleConfig | None = None,
        *,
        progress: bool = True,
        **settings,
    ) -> tuple[pd.DataFrame, Iterator[tuple[np.ndarray, ...]]]:
        """What :meth:`generate` and :meth:`generate_to` are built on: the obs of every
        generated cell (known up front) and a lazy iterator of ``(X, log1p, latent)`` blocks,
        one per group in obs order (``log1p`` is None for continuous / embedding targets)."""
        cfg = G.check_sample_config(override(config or SampleConfig(), **settings))
        cond = self.prepare(morphology)
        return cond.generated_obs(cfg.n_cells), G.generate_blocks(self, cond, cfg, progress)

    @torch.no_grad()
    def generate(
        self,
        morphology: ad.AnnData | G.Conditions,
        config: SampleConfig | None = None,
        *,
        progress: bool = True,
        **settings,
    ) -> ad.AnnData:
        """Generate ``n_cells`` expression profiles for every pairing group of ``morphology``.

        ``config`` (default :class:`~phenoseq.config.SampleConfig`) sets the number of cells,
        the sampler, its steps, guidance and seed; keyword ``settings`` override single fields
        (``model.generate(adata, n_cells=200, guidance=1.5)``). :meth:`generate_to` writes the
        same cells to a file group by group (bounded memory).

        Returns
        -------
        AnnData ``"n_groups*n_cells n_genes"`` in scverse form: for counts, ``X`` and
        ``layers['counts']`` the raw counts (CSR) and ``layers['log1p']`` the log-normalised view
        (CSR: as sparse as the counts); for continuous / embedding targets, ``X`` the values.
        ``obsm['X_phenoseq']`` the latents; ``var`` the training ``var`` columns (gene symbols,
        ids); obs names ``<group>-<i>``, the obs columns constant within a group plus
        ``phenoseq_group``; ``uns['phenoseq']`` provenance and settings.
        """
        cfg = G.check_sample_config(override(config or SampleConfig(), **settings))
        obs, blocks = self.generate_blocks(morphology, cfg, progress=progress)
        xs, logs, zs = zip(*blocks, strict=True)
        x = np.concatenate(xs)
        if self.registry.expression_kind.sparse_output:
            x = sp.csr_matrix(x)
        out = ad.AnnData(X=x, obs=obs, var=self.registry.var_frame())
        if self.registry.expression_kind.sparse_output:
            out.layers[K.COUNTS] = x.copy()
            out.layers[K.LOG1P] = sp.csr_matrix(np.concatenate(logs))
        out.obsm[K.LATENT] = np.concatenate(zs)
        out.uns[K.UNS] = G.generation_uns(self, cfg)
        return out

    @torch.no_grad()
    def generate_to(
        self,
        path: str | Path,
        morphology: ad.AnnData | G.Conditions,
        config: SampleConfig | None = None,
        *,
        progress: bool = True,
        uns: dict | None = None,
        **settings,
    ) -> Path:
        """:meth:`generate` straight into an ``.h5ad``, one group at a time (memory: one group's
        cells, whatever the number of groups); atomic. ``uns`` is added to the provenance."""
        cfg = G.check_sample_config(override(config or SampleConfig(), **settings))
        obs, blocks = self.generate_blocks(morphology, cfg, progress=progress)
        sparse = self.registry.expression_kind.sparse_output
        meta = G.generation_uns(self, cfg) | (uns or {})
        with atomic_path(path) as tmp, H5adWriter(
            tmp, obs, self.registry.var_frame(), {K.UNS: meta}, sparse=sparse,
            obsm={K.LATENT: self.n_latent}, sparse_layers=(K.COUNTS, K.LOG1P) if sparse else (),
        ) as w:  # fmt: skip
            for x, log1p, z in blocks:
                layers = {K.COUNTS: x, K.LOG1P: log1p} if sparse else None
                w.append(x, obsm={K.LATENT: z}, layers=layers)
        return Path(path)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Write the model directory atomically: safetensors weights + EMA, JSON config."""
        return _io.save(self, folder)

    @classmethod
    def load(cls, folder: str | Path) -> PhenoSeqModel:
        """Load a model directory written by :meth:`save` (sampling uses the EMA weights); a
        damaged directory is one :class:`~phenoseq.errors.InputError` naming the file."""
        folder = Path(folder)
        doc, tensors = _io.read(folder)
        model = cls(*_io.configs(doc, folder / "config.json"))
        _io.load_weights(model, tensors, folder)
        _io.load_wells(model, tensors, doc, folder)
        model.history = doc.get("history", {})
        model.autoencoder.eval()
        model.diffusion.eval()
        return model
