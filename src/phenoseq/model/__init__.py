"""The user-facing model (AnnData in, AnnData out), split as scvi-tools splits it:

- ``_model``: :class:`PhenoSeqModel` — register, train, generate, save, load (thin);
- ``_registry``: what registration keeps of the data, and the views of new data;
- ``_kinds``: one entry per expression kind (counts / continuous / embedding);
- ``_plan``: the training plan (what a batch is, which losses) that :mod:`phenoseq.train` drives;
- ``_generate``: conditions, sampling a group, decoding, streaming blocks;
- ``_io``: save / load / validation of a model directory;
- ``_files``: training from files, the recorded training data, new files read like it.
"""

from __future__ import annotations

from ..config import DiffusionConfig, ModelConfig, SampleConfig, TrainConfig
from ._files import (
    load_training,
    read_like_training,
    real_pseudobulk,
    train_model,
    training_morphology_means,
)
from ._generate import Conditions
from ._kinds import KINDS, Kind
from ._model import PhenoSeqModel
from ._registry import Registry

__all__ = [
    "KINDS",
    "Conditions",
    "DiffusionConfig",
    "Kind",
    "ModelConfig",
    "PhenoSeqModel",
    "Registry",
    "SampleConfig",
    "TrainConfig",
    "load_training",
    "read_like_training",
    "real_pseudobulk",
    "train_model",
    "training_morphology_means",
]
