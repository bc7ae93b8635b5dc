"""Treatment identification: the original PhenoSeq / scGeneScope protocol (DESIGN.md §4).

A classifier is trained on single profiles of the training replicates and tested on single
profiles of the held-out replicate, with four kinds of input: imaging, synthetic expression,
imaging + synthetic (:func:`fuse`) and imaging + real (the ceiling). The score is balanced
accuracy; :func:`gap_closure` says how much of the imaging → ceiling gap the synthetic
expression closes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..data.arrays import as_labels, as_matrix, same_width
from ..errors import InputError


@dataclass(frozen=True, eq=False)
class IdentificationOutput:
    """Result of :func:`treatment_identification`.

    Attributes
    ----------
    balanced_accuracy
        Mean per-class recall over the classes present in the (kept) test set.
    confusion
        ``"n_labels n_labels"`` counts; row = true label, column = predicted label, in the
        order of ``labels``. Rows of classes absent from the test set are zero.
    labels
        The training classes (sorted, as str).
    predictions
        ``"n_kept"`` predicted label of every kept test row.
    kept
        ``"n_test"`` bool mask of the test rows whose label was seen in training.
    converged
        Whether lbfgs converged within ``max_iter`` (the warning is not raised; check this).
    """

    balanced_accuracy: float
    confusion: np.ndarray
    labels: list[str]
    predictions: np.ndarray
    kept: np.ndarray
    converged: bool


def treatment_identification(
    train_X: np.ndarray,
    train_y: np.ndarray,
    test_X: np.ndarray,
    test_y: np.ndarray,
    seed: int = 0,
    max_iter: int = 1000,
    C: float = 1.0,
) -> IdentificationOutput:
    """Balanced accuracy of a multinomial logistic regression predicting treatment from profiles.

    Features are standardised with a scaler fitted on the training rows only; the classifier is
    sklearn's L2-regularised multinomial ``LogisticRegression`` (lbfgs). Test rows whose label
    never occurs in training cannot be predicted and are dropped (see ``kept``); balanced
    accuracy then averages the recall of every class present in the kept test rows.

    Parameters
    ----------
    train_X
        ``"n_train d"`` training profiles (one row per cell or per profile).
    train_y
        ``"n_train"`` treatment labels (at least two distinct).
    test_X
        ``"n_test d"`` held-out profiles, same features as ``train_X``.
    test_y
        ``"n_test"`` treatment labels.
    seed
        ``random_state`` of the classifier (lbfgs itself is deterministic).
    max_iter
        lbfgs iterations.
    C
        Inverse L2 regularisation strength.
    """
    train_X, test_X = as_matrix(train_X, "train_X"), as_matrix(test_X, "test_X")
    same_width(train_X, test_X, "train_X and test_X")
    train_y = as_labels(train_y, len(train_X), "train_y")
    test_y = as_labels(test_y, len(test_X), "test_y")
    labels = np.unique(train_y)
    if len(labels) < 2:
        raise InputError(f"training has {len(labels)} class(es).", "pass at least two treatments")
    kept = np.isin(test_y, labels)
    if not kept.any():
        raise InputError("no test label occurs in training.", "check the split and the labels")
    scaler = StandardScaler().fit(train_X)
    clf = LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(train_X), train_y)
    pred = clf.predict(scaler.transform(test_X[kept]))
    confusion = _confusion(test_y[kept], pred, labels)
    return IdentificationOutput(
        balanced_accuracy=balanced_accuracy(confusion),
        confusion=confusion,
        labels=labels.tolist(),
        predictions=pred,
        kept=kept,
        converged=bool(np.all(clf.n_iter_ < max_iter)),
    )


def _confusion(true: np.ndarray, pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``"n_labels n_labels"`` counts; row = true, column = predicted (both among ``labels``)."""
    t, p = np.searchsorted(labels, true), np.searchsorted(labels, pred)
    out = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(out, (t, p), 1)
    return out


def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean recall over the classes with at least one true row of ``confusion``."""
    support = confusion.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(confusion)[present] / support[present]))


def fuse(
    morph_X: np.ndarray,
    morph_groups: np.ndarray,
    expr_X: np.ndarray,
    expr_groups: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate every morphology row with a random expression row of the same pairing group.

    The modalities are never measured in the same cell, so a fused profile pairs one
    morphology cell with one expression cell (real or synthetic) drawn uniformly, with
    replacement and independently per morphology row, from the expression cells of its group
    (e.g. ``Sample_ID`` = treatment × replicate). Every morphology row is kept once.

    Parameters
    ----------
    morph_X
        ``"n_morph d_morph"`` morphology profiles.
    morph_groups
        ``"n_morph"`` pairing group of each morphology row.
    expr_X
        ``"n_expr d_expr"`` expression profiles (e.g. PCs).
    expr_groups
        ``"n_expr"`` pairing group of each expression row.
    rng
        Source of the draws.

    Returns
    -------
    fused_X
        ``"n_morph (d_morph + d_expr)"``: morphology columns first.
    groups
        ``"n_morph"`` the morphology groups (str), row-aligned with ``fused_X``.
    """
    morph_X, expr_X = as_matrix(morph_X, "morph_X"), as_matrix(expr_X, "expr_X")
    morph_groups = as_labels(morph_groups, len(morph_X), "morph_groups")
    expr_groups = as_labels(expr_groups, len(expr_X), "expr_groups")
    missing = np.setdiff1d(morph_groups, expr_groups)
    if len(missing):
        raise InputError(
            f"{len(missing)} morphology group(s) have no expression cells, e.g. "
            f"{missing[:3].tolist()}.",
            "drop those morphology rows or generate expression for those groups",
        )
    rows = np.empty(len(morph_X), dtype=np.int64)
    for g in np.unique(morph_groups):
        pool, target = np.flatnonzero(expr_groups == g), np.flatnonzero(morph_groups == g)
        rows[target] = pool[rng.integers(0, len(pool), size=len(target))]
    return np.hstack([morph_X, expr_X[rows]]), morph_groups


def gap_closure(imaging: float, fused: float, ceiling: float) -> float:
    """``(fused - imaging) / (ceiling - imaging)``: the share of the gap to the ceiling closed.

    E.g. the original PhenoSeq: ``(0.315 - 0.270) / (0.425 - 0.270) = 0.29``. 1 means the
    fused input matches imaging + real; negative means it hurts. NaN when
    ``ceiling == imaging`` (no gap to close).
    """
    gap = float(ceiling) - float(imaging)
    return (float(fused) - float(imaging)) / gap if gap != 0 else float("nan")
