"""The model and files: train from input files into a model directory, re-read the training
data a model records, and read new files the way the model was trained (one place for all three,
so evaluation, calibration and generation see the same views)."""

from __future__ import annotations

import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

from .. import _keys as K
from ..config import InputConfig, ModelConfig, TrainConfig
from ..data import load_paired, read_expression, read_morphology
from ..data.pairing import PairedData
from ..data.transforms import GroupSums, expression_blocks, log1p_view, pseudobulk
from ..errors import InputError
from ..io import sha256_file
from ..train import autocast, init_distributed, resolve_device
from ._model import PhenoSeqModel


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
    removed when the model directory is complete; ``resume=True`` continues from it. Under
    ``torchrun`` every rank trains on its share of each batch and rank 0 writes.
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
    model = PhenoSeqModel.from_paired(paired, config, train_config, _record(inputs))
    ckpt = _checkpoint_dir(out)
    if resume and not (ckpt / "state.json").exists():
        raise InputError(f"nothing to resume: {ckpt} does not exist.", "drop --resume", out)
    model.train(paired, ckpt, resume=resume, progress=progress, on_step=on_step)
    if rank == 0:  # one writer under torchrun
        model.save(out)
        shutil.rmtree(ckpt, ignore_errors=True)
    return model


def _record(inputs: InputConfig) -> dict:
    """The inputs as the model records them: absolute paths (``evaluate`` re-reads them) and the
    sha256 of both files (a changed file is refused later)."""
    record = inputs.to_dict() | {
        k: str(Path(v).resolve()) for k, v in inputs.to_dict().items()
        if k in ("morphology", "expression", "platemap") and v is not None
    }  # fmt: skip
    record["sha256"] = {k: sha256_file(getattr(inputs, k)) for k in ("morphology", "expression")}
    return record


def load_training(
    model: PhenoSeqModel,
    train_expression: str | Path | None = None,
    train_morphology: str | Path | None = None,
) -> PairedData:
    """The model's training data, re-read from the paths recorded at training time.

    A recorded file that is missing or whose sha256 changed is an error; ``train_*`` replace
    the recorded paths (e.g. after moving the data), and are not hashed.
    """
    record = dict(model.registry.inputs)
    if not record.get("morphology") or not record.get("expression"):
        raise InputError("the model does not record its training data paths.",
                         "pass --train-expression and --train-morphology")  # fmt: skip
    sha = record.pop("sha256", {})
    overrides = {"expression": train_expression, "morphology": train_morphology}
    for key, override in overrides.items():
        if override is not None:
            record[key] = str(override)
            continue
        path, flag = Path(record[key]), f"--train-{key}"
        if not path.exists():
            raise InputError(f"the model's training {key} file is missing.",
                             f"pass {flag} with its new location", path)  # fmt: skip
        if key in sha and sha256_file(path) != sha[key]:
            raise InputError(f"the model's training {key} file changed since training "
                             "(sha256 differs).", f"restore it or pass {flag}", path)  # fmt: skip
    paired = load_paired(InputConfig.from_dict(record))
    missing = set(model.registry.groups_of_role("train")) - set(paired.split.groups("train"))
    if missing:
        raise InputError(f"{len(missing)} training group(s) of the model are not training groups "
                         f"of this data, e.g. {sorted(missing)[:3]}.",
                         "pass the training files the model was trained on")  # fmt: skip
    return paired


def read_like_training(model: PhenoSeqModel, morphology=None, expression=None) -> tuple:
    """New morphology and / or expression files read as the model's training files were
    (feature set or ``obsm`` embedding, expression kind, layer, ``obsm`` target). An AnnData
    passes through; None stays None. Returns ``(morphology, expression)``."""
    rec = model.registry.inputs
    if morphology is not None and not isinstance(morphology, ad.AnnData):
        morphology = read_morphology(morphology, obsm_key=rec.get("morphology_obsm"),
                                     features=rec.get("features"))  # fmt: skip
    if expression is not None and not isinstance(expression, ad.AnnData):
        expression = read_expression(
            expression,
            kind=rec.get("expression_kind", "counts"),
            layer=rec.get("layer"),
            obsm_key=rec.get("expression_obsm"),
        )
    return morphology, expression


def real_pseudobulk(model: PhenoSeqModel, expression: ad.AnnData) -> pd.DataFrame:
    """Mean analysis view (log1p) of each pairing group of real cells (groups x the model's
    genes), read block by block (so a backed AnnData is never loaded whole)."""
    reg = model.registry
    reg.select_genes(expression)  # the gene check
    names, g = np.unique(reg.group_ids(expression.obs, "expression").astype(str),
                         return_inverse=True)  # fmt: skip
    sums = GroupSums(len(names), len(reg.genes))
    for lo, x in expression_blocks(expression, reg.genes):
        sums.add(log1p_view(x, reg.kind), g[lo : lo + x.shape[0]])
    return pd.DataFrame(sums.means(), index=names, columns=reg.genes)


def training_morphology_means(model: PhenoSeqModel) -> np.ndarray:
    """Mean normalised morphology of every registered group, from the recorded training data
    (for models saved before ``group_stats['morph_mean']`` existed); NaN rows: groups without
    morphology."""
    paired = load_training(model)
    x = model.normalize_features(paired.morphology)
    names, means = pseudobulk(x, paired.morphology.obs[K.GROUP].to_numpy())
    table = pd.DataFrame(means, index=names).reindex(model.registry.group_names)
    return table.to_numpy(np.float32)
