"""A small CNN trained from scratch on single-cell crops: a learned morphology embedding.

No pretrained weights can be downloaded here, so the encoder is trained on the screen itself,
*weakly supervised by treatment*: a linear head classifies each crop's treatment and the layer
before it is the embedding (the recipe of weakly supervised Cell Painting encoders). Training is
time-capped; only rows the caller marks as training rows (never held-out replicates) teach it.
The embedding goes to ``obsm`` beside (or instead of) the measured features; ``train`` and
``generate`` use it with ``--morphology-obsm``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import _keys as K
from ..data.pairing import with_key_aliases
from ..data.transforms import fit_scaler
from ..errors import InputError
from ..io import atomic_path, write_h5ad


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture and training of :class:`CropEncoder` (stored in ``uns``)."""

    n_embedding: int = 64
    width: int = 32  # channels of the first block; doubled per block up to 4x
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_minutes: float = 4.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.GroupNorm(8, c_out), nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.GroupNorm(8, c_out), nn.GELU(),
        nn.MaxPool2d(2),
    )  # fmt: skip


class CropEncoder(nn.Module):
    """``(batch, channels, S, S)`` crops -> ``(batch, n_embedding)`` embeddings.

    Four conv blocks (3x3 convolutions, GroupNorm, GELU, 2x2 max-pool), global average pooling
    and a linear projection; per-channel standardisation of the input is part of the module.
    """

    def __init__(self, n_channels: int = 5, n_embedding: int = 64, width: int = 32):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 4 * width]
        layers, c = [], n_channels
        for w in widths:
            layers.append(_block(c, w))
            c = w
        self.features = nn.Sequential(*layers)
        self.project = nn.Linear(c, n_embedding)
        self.register_buffer("mean", torch.zeros(n_channels))
        self.register_buffer("std", torch.ones(n_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean[:, None, None]) / self.std[:, None, None]
        return self.project(self.features(x).mean(dim=(2, 3)))


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random rotation by 90 degrees, flip, and per-crop per-channel intensity scaling."""
    k = int(torch.randint(0, 4, (1,), generator=gen))
    x = torch.rot90(x, k, dims=(2, 3))
    if torch.rand(1, generator=gen) < 0.5:
        x = torch.flip(x, dims=(3,))
    scale = 1 + 0.1 * torch.randn(x.shape[0], x.shape[1], 1, 1, generator=gen)
    return x * scale


def train_encoder(
    crops: np.ndarray,
    labels: np.ndarray,
    train_rows: np.ndarray,
    config: EncoderConfig | None = None,
    progress: bool = True,
) -> tuple[CropEncoder, dict]:
    """Fit a :class:`CropEncoder` (see :func:`_fit_encoder`); returns it and its history."""
    model, history, _ = _fit_encoder(crops, labels, train_rows, config, progress)
    return model, history


def _fit_encoder(
    crops: np.ndarray,
    labels: np.ndarray,
    train_rows: np.ndarray,
    config: EncoderConfig | None = None,
    progress: bool = True,
) -> tuple[CropEncoder, dict, np.ndarray]:
    """Fit a :class:`CropEncoder` by classifying the treatment of the ``train_rows`` crops.

    Parameters
    ----------
    crops
        ``(n_cells, channels, S, S)`` (e.g. the zarr array ``featurize`` writes; read lazily
        batch by batch).
    labels
        ``(n_cells,)`` treatment label of every row.
    train_rows
        Boolean ``(n_cells,)``: rows whose label may teach the encoder (training groups only).

    Returns
    -------
    The encoder (eval mode), a history dict (epochs, seconds, train/held-out accuracy) and the
    embedding of every crop (computed once for the accuracies, reused by the caller).
    """
    cfg = config or EncoderConfig()
    train_rows = np.asarray(train_rows, bool)
    n = crops.shape[0]
    if len(labels) != n or len(train_rows) != n:
        raise InputError(f"{n} crops but {len(labels)} labels / {len(train_rows)} rows.",
                         "pass the crops written with this morphology file")  # fmt: skip
    idx = np.flatnonzero(train_rows)
    classes, y_all = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    if len(np.unique(y_all[idx])) < 2:
        raise InputError("the encoder needs at least two treatments among its training rows.",
                         "check --label-key and the held-out rows")  # fmt: skip
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = CropEncoder(crops.shape[1], cfg.n_embedding, cfg.width)
    sample = take(crops, np.sort(rng.choice(idx, min(len(idx), 2048), replace=False)))
    model.mean.copy_(torch.from_numpy(sample.mean(axis=(0, 2, 3))))
    model.std.copy_(torch.from_numpy(np.maximum(sample.std(axis=(0, 2, 3)), 1e-6)))
    head = nn.Linear(cfg.n_embedding, len(classes))
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, -(-len(idx) // cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    y = torch.from_numpy(y_all)
    start, deadline = time.monotonic(), time.monotonic() + 60 * cfg.max_minutes
    history: dict = {"epochs": 0, "loss": [], "stopped_early": False}
    bar = tqdm(total=steps, desc="encoder", disable=not progress)
    for _epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(idx)
        losses = []
        for lo in range(0, len(order), cfg.batch_size):
            rows = np.sort(order[lo : lo + cfg.batch_size])
            x = _augment(torch.from_numpy(take(crops, rows)), gen)
            loss = nn.functional.cross_entropy(head(model(x)), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update()
            if time.monotonic() > deadline:
                history["stopped_early"] = True
                break
        history["epochs"] += 1
        history["loss"].append(float(np.mean(losses)))
        if history["stopped_early"]:
            break
    bar.close()
    model.eval()
    history["seconds"] = time.monotonic() - start
    with torch.no_grad():
        emb = embed(crops, model, progress=False)
        pred = np.concatenate([head(torch.from_numpy(e)).argmax(1).numpy()
                               for e in _chunks(emb, 4096)])  # fmt: skip
    held = ~train_rows
    history["train_accuracy"] = float((pred[idx] == y_all[idx]).mean())
    seen = held & np.isin(y_all, np.unique(y_all[idx]))
    history["heldout_accuracy"] = float((pred[seen] == y_all[seen]).mean()) if seen.any() else None
    history["n_classes"] = len(classes)
    return model, history, emb


def take(crops, rows: np.ndarray) -> np.ndarray:
    """Rows of a numpy or zarr crop array as float32 (zarr: orthogonal selection)."""
    sel = crops.oindex[rows] if hasattr(crops, "oindex") else crops[rows]
    return np.asarray(sel, np.float32)


def _chunks(x: np.ndarray, n: int):
    for lo in range(0, len(x), n):
        yield x[lo : lo + n]


@torch.no_grad()
def embed(crops, model: CropEncoder, batch_size: int = 512, progress: bool = True) -> np.ndarray:
    """Embeddings ``(n_cells, n_embedding)`` float32 of every crop (read batch by batch)."""
    model.eval()
    out = []
    for lo in tqdm(range(0, crops.shape[0], batch_size), desc="embed", disable=not progress):
        x = torch.from_numpy(np.asarray(crops[lo : lo + batch_size], np.float32))
        out.append(model(x).numpy())
    return np.concatenate(out).astype(np.float32)


def save_encoder(model: CropEncoder, path, config: EncoderConfig) -> None:
    """Weights (safetensors) with the config in the metadata."""
    import json

    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        weights = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(weights, tmp, metadata={"config": json.dumps(config.to_dict()),
                                          "n_channels": str(model.mean.numel())})  # fmt: skip


def load_encoder(path) -> tuple[CropEncoder, EncoderConfig]:
    """An encoder written by :func:`save_encoder`."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        cfg = EncoderConfig(**json.loads(meta["config"]))
        model = CropEncoder(int(meta["n_channels"]), cfg.n_embedding, cfg.width)
        model.load_state_dict(load_file(str(path)))
    except FileNotFoundError as exc:
        raise InputError("does not exist.", "pass an encoder written by `phenoseq embed`",
                         path) from exc  # fmt: skip
    except Exception as exc:  # safetensors raises its own error type for a foreign file
        raise InputError(f"is not a PhenoSeq crop encoder ({exc}).",
                         "pass an encoder written by `phenoseq embed`", path) from exc  # fmt: skip
    return model.eval(), cfg


def embed_morphology(
    morphology,
    out,
    *,
    crops=None,
    label_key: str = "Treatment",
    holdout_key: str | None = None,
    holdout: tuple[str, ...] = (),
    encoder=None,
    config: EncoderConfig | None = None,
    progress: bool = True,
):
    """The library function ``phenoseq embed`` wraps: a featurize output + its crops -> the same
    AnnData with ``obsm['X_cnn']`` (the embedding) and ``obsm['X_features_cnn']`` (z-scored
    features beside the z-scored embedding), written to ``out``; the encoder's weights go to
    ``<out>.encoder.safetensors``.

    With ``encoder`` (a saved encoder) nothing is trained: new plates get the same embedding.
    Otherwise the encoder learns from the rows whose ``holdout_key`` is not in ``holdout``.
    """
    from pathlib import Path

    import anndata as ad
    import zarr

    morphology, out = Path(morphology), Path(out)
    if not morphology.is_file():
        raise InputError("does not exist.", "pass the .h5ad written by `phenoseq featurize`",
                         morphology)  # fmt: skip
    adata = ad.read_h5ad(morphology)
    if "Metadata_CropIndex" not in adata.obs:
        raise InputError("has no Metadata_CropIndex column: not a featurize output.",
                         "run `phenoseq featurize` (with crops) first", morphology)  # fmt: skip
    crops_path = Path(crops) if crops else morphology.with_name(morphology.stem + ".crops.zarr")
    try:
        arr = zarr.open_array(str(crops_path), path="crops", mode="r")
    except Exception as exc:  # zarr raises several types for a missing/foreign store
        raise InputError(f"cannot be opened as the crops of {morphology.name} ({exc}).",
                         "pass --crops, or re-run featurize without --no-crops",
                         crops_path) from exc  # fmt: skip
    index = adata.obs["Metadata_CropIndex"].to_numpy(np.int64)
    if index.max(initial=-1) >= arr.shape[0]:
        raise InputError(f"has {arr.shape[0]} crops but the morphology indexes "
                         f"{index.max() + 1}.", "pass the crops of this morphology file",
                         crops_path)  # fmt: skip
    ordered = arr if np.array_equal(index, np.arange(arr.shape[0])) else take(arr, index)
    cfg = config or EncoderConfig()
    info: dict = {"crops": str(crops_path)}
    if encoder is not None:
        model, cfg = load_encoder(encoder)
        info["encoder"] = str(encoder)
        emb = embed(ordered, model, progress=progress)
    else:
        obs = with_key_aliases(adata.obs, (label_key, holdout_key))
        if label_key not in obs:
            raise InputError(f"has no '{label_key}' column to supervise the encoder.",
                             "pass --label-key (e.g. after --platemap in featurize)",
                             morphology)  # fmt: skip
        train_rows = np.ones(adata.n_obs, bool)
        if holdout_key is not None:
            if holdout_key not in obs:
                raise InputError(f"has no '{holdout_key}' column.", "check --holdout-key",
                                 morphology)  # fmt: skip
            train_rows = ~obs[holdout_key].astype(str).isin([str(h) for h in holdout]).to_numpy()
        model, history, emb = _fit_encoder(ordered, obs[label_key].astype(str).to_numpy(),
                                           train_rows, cfg, progress)  # fmt: skip
        info |= {"label_key": label_key, "holdout_key": holdout_key,
                 "holdout": list(holdout), "history": history}  # fmt: skip
    add_embedding(adata, "cnn", emb, info | {"config": cfg.to_dict()})
    if encoder is None:
        save_encoder(model, out.with_name(out.stem + ".encoder.safetensors"), cfg)
    write_h5ad(adata, out)
    return adata


def add_embedding(adata, name: str, emb: np.ndarray, info: dict) -> None:
    """``obsm['X_<name>']`` = ``emb``; ``obsm['X_features_<name>']`` = z-scored ``X`` beside the
    z-scored embedding; ``uns['phenoseq']['encoder']`` = ``info``."""

    if not np.isfinite(emb).all():
        raise InputError("the embedding holds NaN or infinite values.", "fix the embedding")

    def z(a: np.ndarray) -> np.ndarray:
        mean, std = fit_scaler(a)
        return (a - mean) / std

    x = np.asarray(adata.X, np.float32)
    adata.obsm[f"X_{name}"] = emb.astype(np.float32)
    adata.obsm[f"X_features_{name}"] = np.hstack([z(x), z(emb)]).astype(np.float32)
    uns = dict(adata.uns.get(K.UNS, {}))
    uns["encoder"] = info
    adata.uns[K.UNS] = uns


def attach_embeddings(morphology, embeddings, out):
    """Embeddings computed elsewhere (any external model) -> ``obsm['X_external']`` and
    ``obsm['X_features_external']`` of a featurize output, written to ``out``.

    ``embeddings``: ``.npy`` ``(n_cells, d)`` in the order of the morphology's rows, or a
    ``.parquet`` / ``.csv`` / ``.tsv`` table whose numeric columns are the embedding and which
    either has a ``Metadata_CropIndex`` column (the crop each row embeds) or one row per cell in
    order.
    """
    from pathlib import Path

    import anndata as ad
    import pandas as pd

    morphology, embeddings, out = Path(morphology), Path(embeddings), Path(out)
    for p in (morphology, embeddings):
        if not p.is_file():
            raise InputError("does not exist.", "check the path", p)
    adata = ad.read_h5ad(morphology)
    try:
        if embeddings.suffix == ".npy":
            emb, table = np.load(embeddings), None
        else:
            sep = "\t" if embeddings.suffix == ".tsv" else ","
            table = (pd.read_parquet(embeddings) if embeddings.suffix == ".parquet"
                     else pd.read_csv(embeddings, sep=sep))  # fmt: skip
    except Exception as exc:
        raise InputError(f"cannot be read ({type(exc).__name__}: {exc}).",
                         "write .npy, .parquet, .csv or .tsv", embeddings) from exc  # fmt: skip
    if table is not None:
        if "Metadata_CropIndex" in table:
            if "Metadata_CropIndex" not in adata.obs:
                raise InputError(
                    "the morphology has no Metadata_CropIndex to match on.",
                    "give one embedding row per cell, in order",
                    embeddings,
                )
            table = table.set_index("Metadata_CropIndex")
            missing = set(adata.obs["Metadata_CropIndex"]) - set(table.index)
            if missing:
                raise InputError(
                    f"lacks {len(missing)} cells' crop indices, e.g. {sorted(missing)[:3]}.",
                    "embed every crop",
                    embeddings,
                )
            table = table.loc[adata.obs["Metadata_CropIndex"].to_numpy()]
        emb = table.select_dtypes("number").to_numpy(np.float32)
    if emb.ndim != 2 or len(emb) != adata.n_obs:
        raise InputError(f"has shape {emb.shape}; the morphology has {adata.n_obs} cells.",
                         "give one row per cell (n_cells, d)", embeddings)  # fmt: skip
    add_embedding(adata, "external", np.asarray(emb, np.float32),
                  {"external": str(embeddings), "dim": int(emb.shape[1])})  # fmt: skip
    write_h5ad(adata, out)
    return adata
