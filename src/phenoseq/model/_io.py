"""The model directory: written atomically, read back with every file validated.

| file | content |
|---|---|
| ``config.json`` | package version, model / diffusion / training settings, the registry, history |
| ``weights.safetensors`` | autoencoder, raw diffusion weights, latent standardisation |
| ``ema.safetensors`` | EMA diffusion weights (used for sampling) |
| ``groups.safetensors`` | per training group: pseudo-bulk, condition embedding, mean morphology,
  library sizes |
| ``wells.safetensors`` | well conditions: the conditioner (whitening, standardisation) and the
  mean head's arrays (its settings and treatments are in ``config.json``) |

Loading refuses a damaged directory with one line naming the file (missing, truncated, not
JSON, an edited setting, weights of other shapes): :class:`~phenoseq.errors.InputError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .._version import __version__
from ..config import ModelConfig, TrainConfig, from_dict
from ..errors import InputError
from ..io import atomic_path, readable_by_umask
from ._mean_head import MeanHead
from ._registry import Registry
from ._wells import Conditioner

if TYPE_CHECKING:
    from ._model import PhenoSeqModel

FILES = ("config.json", "weights.safetensors", "ema.safetensors", "groups.safetensors")
WELLS = "wells.safetensors"  # only for models with well conditions
FIX = "re-run `phenoseq train` (or restore the model directory from a backup)"


def save(model: PhenoSeqModel, folder: str | Path) -> Path:
    """Write the model directory atomically: safetensors weights + EMA, JSON config."""
    folder = Path(folder)
    raw = model.raw_diffusion_state()
    with atomic_path(folder, is_dir=True) as tmp:
        weights = {f"autoencoder.{k}": v for k, v in model.autoencoder.state_dict().items()}
        weights |= {f"diffusion.{k}": v for k, v in raw.items()}
        weights |= {"latent_mean": model.latent_mean, "latent_std": model.latent_std}
        _save(weights, tmp / "weights.safetensors")
        _save({f"diffusion.{k}": v for k, v in model.diffusion.state_dict().items()},
              tmp / "ema.safetensors")  # fmt: skip
        _save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.group_stats.items()},
              tmp / "groups.safetensors")  # fmt: skip
        wells, head_doc = _wells_state(model)
        if wells:
            _save({k: torch.from_numpy(v) for k, v in wells.items()}, tmp / WELLS)
        doc = {
            "phenoseq_version": __version__,
            "model_config": asdict(model.config),
            "train_config": asdict(model.train_config),
            "registry": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                         for k, v in asdict(model.registry).items()},
            "history": model.history,
            "mean_head": head_doc,
        }  # fmt: skip
        (tmp / "config.json").write_text(json.dumps(doc, indent=1))
    return folder


def _wells_state(model: PhenoSeqModel) -> tuple[dict[str, np.ndarray], dict | None]:
    """The conditioner's and the mean head's arrays (prefixed) and the head's settings."""
    arrays, doc = {}, None
    if model.conditioner is not None:
        arrays |= {f"cond.{k}": np.array(v, np.float64) for k, v in
                   model.conditioner.state().items()}  # fmt: skip
    if model.mean_head is not None:
        head, doc = model.mean_head.state()
        arrays |= {f"head.{k}": np.array(v) for k, v in head.items()}  # own memory
    return arrays, doc


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors writes its files mode 600; give them the permissions the umask allows."""
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, path)
    os.chmod(path, readable_by_umask())


def read(folder: str | Path) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
    """``config.json`` and the three weight files of a model directory, each validated."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("is not a model directory.", "pass the --out folder of `phenoseq train`",
                         folder)  # fmt: skip
    missing = [n for n in FILES if not (folder / n).is_file()]
    if missing:
        raise InputError(f"is not a complete PhenoSeq model directory (missing {missing}).",
                         "pass the --out folder of `phenoseq train`", folder)  # fmt: skip
    try:
        doc = json.loads((folder / "config.json").read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"is not valid JSON ({exc}).", FIX, folder / "config.json") from exc
    tensors = {}
    for name in (*FILES[1:], WELLS):
        if name == WELLS and not (folder / name).is_file():
            continue
        try:
            tensors[name] = load_file(folder / name)
        except Exception as exc:  # safetensors raises its own error type for damaged files
            raise InputError(f"cannot be read ({type(exc).__name__}: {str(exc)[:100]}).", FIX,
                             folder / name) from exc  # fmt: skip
    return doc, tensors


def configs(doc: dict, path: Path) -> tuple[Registry, ModelConfig, TrainConfig]:
    """The registry and settings of ``config.json`` (an edited or foreign file: one line)."""
    try:
        r = dict(doc["registry"])
        for k in ("feature_mean", "feature_std", "target_mean", "target_std"):
            r[k] = np.asarray(r[k], np.float32)
        model_cfg = _legacy_model_config(dict(doc["model_config"]))
        return (Registry(**r), from_dict(ModelConfig, model_cfg),
                from_dict(TrainConfig, doc["train_config"]))  # fmt: skip
    except InputError as exc:
        raise InputError(exc.problem, FIX, path) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"is not a PhenoSeq model config ({type(exc).__name__}: {exc}).", FIX,
                         path) from exc  # fmt: skip


def _legacy_model_config(d: dict) -> dict:
    """Model directories written before the diffusion settings had their own config (and
    before ``n_top_genes`` was renamed ``n_variable_genes``)."""
    if "n_top_genes" in d:
        d["n_variable_genes"] = d.pop("n_top_genes")
    flat = {k: d.pop(k) for k in ("prediction_type", "n_train_timesteps", "cond_drop_prob")
            if k in d}  # fmt: skip
    if flat:
        d["diffusion"] = d.get("diffusion", {}) | flat
    return d


def load_weights(model: PhenoSeqModel, tensors: dict[str, dict], folder: Path) -> None:
    """Load the weight files into ``model`` (weights of other shapes: one line)."""
    weights, ema, groups = (tensors[n] for n in FILES[1:])
    try:
        model.autoencoder.load_state_dict(_strip(weights, "autoencoder."))
        model.diffusion.load_state_dict(_strip(ema, "diffusion."))
        model.latent_mean, model.latent_std = weights["latent_mean"], weights["latent_std"]
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise InputError(f"weights do not fit the model of config.json ({first}).", FIX,
                         folder) from exc  # fmt: skip
    model.keep_raw_diffusion(_strip(weights, "diffusion."))
    model.group_stats = {k: v.numpy() for k, v in groups.items()}


def load_wells(model: PhenoSeqModel, tensors: dict[str, dict], doc: dict, folder: Path) -> None:
    """The conditioner and the mean head of a model with well conditions."""
    if model.config.condition != "group":
        return
    if WELLS not in tensors:
        raise InputError(f"is not a complete PhenoSeq model directory (missing ['{WELLS}']).",
                         FIX, folder)  # fmt: skip
    arrays = {k: v.numpy() for k, v in tensors[WELLS].items()}
    try:
        model.conditioner = Conditioner.from_state(_strip(arrays, "cond."))
        if doc.get("mean_head") is not None:
            model.mean_head = MeanHead.from_state(_strip(arrays, "head."), doc["mean_head"])
    except (KeyError, TypeError, IndexError) as exc:
        raise InputError(f"mean head / conditioner cannot be read ({type(exc).__name__}: {exc}).",
                         FIX, folder / WELLS) from exc  # fmt: skip


def _strip(d: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in d.items() if k.startswith(prefix)}
