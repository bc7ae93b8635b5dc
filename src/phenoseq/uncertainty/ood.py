"""Confidence / out-of-distribution score of a group.

A group's distance to the training groups, in the condition-embedding space and in the raw
morphology (mean of normalised features), each divided by its median over calibration groups of
*seen* treatments and averaged, is the ``ood_score``. Its conformal p-value against those
calibration groups is the ``confidence`` (0-1: the fraction of in-distribution groups that look
at least as unusual); a group is flagged when the confidence is below a threshold.
"""

from __future__ import annotations

import anndata as ad
import numpy as np

from ..model import Conditions, PhenoSeqModel, training_morphology_means


def novel_groups(model: PhenoSeqModel, groups: list[str]) -> list[str]:
    """Groups whose treatment label was never trained on (unknown groups count as novel)."""
    reg = model.registry
    trained = {lab for lab, r in zip(reg.group_labels, reg.group_roles, strict=True)
               if r == "train"}  # fmt: skip
    labels = dict(zip(reg.group_names, reg.group_labels, strict=True))
    return [g for g in groups if labels.get(g) not in trained]


def ood_distances(model: PhenoSeqModel, morphology: ad.AnnData | Conditions, groups: list[str],
                  seed: int = 0) -> np.ndarray:  # fmt: skip
    """Per group ``(n_groups, 2)``: nearest-training-group distance of the condition embedding
    and of the mean normalised morphology."""
    reg, stats = model.registry, model.group_stats
    cond = model.prepare(morphology)
    train = [i for i, r in enumerate(reg.group_roles) if r == "train"]
    emb_train = stats["embedding"][train]
    ok = np.isfinite(emb_train).all(axis=1)
    emb_train = emb_train[ok]
    if "morph_mean" not in stats:  # a model saved before this statistic: recompute it
        stats["morph_mean"] = training_morphology_means(model)
    mean_train = stats["morph_mean"][train][ok]
    rng = np.random.default_rng(seed)
    out = np.zeros((len(groups), 2))
    for k, name in enumerate(groups):
        rows = cond.cells(name)
        e = model.condition_embedding(rows, rng)
        out[k, 0] = np.linalg.norm(emb_train - e, axis=1).min()
        out[k, 1] = np.linalg.norm(mean_train - rows.mean(axis=0), axis=1).min()
    return out


def ood_score(distances: np.ndarray, scale: list[float]) -> np.ndarray:
    """Mean of the two distances, each divided by its calibration median."""
    return (distances / np.maximum(np.asarray(scale), 1e-12)).mean(axis=1)


def confidence(scores: np.ndarray, reference: list[float]) -> np.ndarray:
    """Conformal p-value: ``(1 + #{reference >= score}) / (n + 1)``."""
    ref = np.sort(np.asarray(reference))
    n_ge = len(ref) - np.searchsorted(ref, scores, side="left")
    return (1 + n_ge) / (len(ref) + 1)
