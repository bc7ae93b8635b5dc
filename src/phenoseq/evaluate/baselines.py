"""Simple baselines that predict the expression cells of held-out groups from training data only
(DESIGN.md §4). A generated profile is worth something only if it beats them.

Every baseline returns :class:`Cells` in the log1p gene space (``"n_groups*n_cells n_genes"``)
with ``n_cells`` rows per held-out group it can predict. They live in one registry,
:data:`REGISTRY` (name -> :class:`Baseline`, in the order every table shows them); adding a
baseline is one function here with the :func:`baseline` decorator:

- ``train_mean``: random pooled training cells (its pseudo-bulk is the training mean);
- ``lookup``: training cells of the same treatment (seen treatments only);
- ``nearest_group``: the cells of the training group whose mean morphology is closest;
- ``ridge``: ridge regression from mean morphology to pseudo-bulk, with cells drawn around the
  prediction from the training within-group residual covariance in the evaluation PC space;
- ``unconditional``: the model itself at guidance 0 (no morphology);
- ``recognise_copy``: the training treatment whose centroid is nearest to the well's mean
  morphology, and distinct training cells of it (what recognising the treatment alone gives);
- ``posterior_lookup``: distinct training cells of every training treatment in proportion to a
  calibrated group-level posterior (the mean head's, closed set);
- ``kernel_ridge``: kernel ridge (RBF + linear) from the well's mean morphology to its
  pseudo-bulk, cells drawn around the prediction as for ridge;
- ``mean_head_copy``: the model's own mean head (its predicted pseudo-bulk) with residuals copied
  from the nearest training treatment: what the diffusion must beat to earn its place.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV

from ..config import MeanHeadConfig
from ..errors import InputError
from ..model import PhenoSeqModel
from ..model._mean_head import TreatmentPosterior, Wells, fit_space, select_kernel_ridge
from .cells import Cells, EvaluationData
from .space import ExpressionSpace


@dataclass
class BaselineInputs:
    """What a baseline may use: the training and held-out populations (it must not read the
    held-out expression), the evaluation space, cells per group, a random generator, and the
    model's own sampler (``generate(guidance)`` -> its cells for the held-out groups)."""

    data: EvaluationData
    space: ExpressionSpace
    n_cells: int
    rng: np.random.Generator
    generate: Callable[[float], Cells] | None = None
    model: PhenoSeqModel | None = None  # for the baselines built from the model's own parts

    @property
    def labels(self) -> pd.Series:
        return self.data.test_labels()


@dataclass(frozen=True)
class Baseline:
    """A registered baseline: its name in metrics.json, its label in tables and plots."""

    name: str
    label: str
    predict: Callable[[BaselineInputs], Cells]
    needs_model: bool = False  # uses ``BaselineInputs.generate``


REGISTRY: dict[str, Baseline] = {}


def baseline(name: str, label: str, needs_model: bool = False):
    """Register ``fn(inputs: BaselineInputs) -> Cells`` as a baseline (returning None skips it,
    e.g. a model without the part it needs)."""

    def register(fn: Callable[[BaselineInputs], Cells]) -> Callable[[BaselineInputs], Cells]:
        REGISTRY[name] = Baseline(name, label, fn, needs_model)
        return fn

    return register


def predict_all(inputs: BaselineInputs) -> dict[str, Cells]:
    """Every registered baseline's cells (those that need the model only when it is given); a
    baseline that cannot be fitted on these training groups (e.g. ridge with fewer than 3) is
    left out with a warning instead of failing the whole evaluation."""
    out = {}
    for name, b in REGISTRY.items():
        if inputs.generate is None and b.needs_model:
            continue
        try:
            cells = b.predict(inputs)
        except InputError as exc:
            warnings.warn(f"baseline {b.label!r} left out: {exc}", UserWarning, stacklevel=2)
            continue
        if cells is not None:
            out[name] = cells
    return out


RIDGE_ALPHAS = tuple(10.0 ** np.arange(-2, 5))


def _targets(test_labels: pd.Series, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.repeat(test_labels.index.to_numpy().astype(str), n_cells)
    return g, np.repeat(test_labels.to_numpy().astype(str), n_cells)


def _draw(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return rows[rng.integers(0, len(rows), size=n)]


def train_mean(train: Cells, test_labels: pd.Series, n_cells: int, rng) -> Cells:
    """``n_cells`` random pooled training cells for every held-out group (``test_labels``:
    group -> label)."""
    g, lab = _targets(test_labels, n_cells)
    return Cells(train.x[rng.integers(0, len(train.x), size=len(g))], g, lab)


def lookup(train: Cells, test_labels: pd.Series, n_cells: int, rng) -> Cells:
    """Training cells of the same treatment; groups of unseen treatments get no cells."""
    seen = test_labels[test_labels.isin(set(train.labels))]
    rows = [_draw(np.flatnonzero(train.labels == lab), n_cells, rng) for lab in seen]
    g, lab = _targets(seen, n_cells)
    x = train.x[np.concatenate(rows)] if rows else train.x[:0]
    return Cells(x, g, lab)


def _morph_means(morph_train: Cells, morph_test: Cells, test_labels: pd.Series):
    train_m = morph_train.means()
    test_m = morph_test.means().reindex(test_labels.index.astype(str))
    if test_m.isna().any().any():
        missing = test_m.index[test_m.isna().any(axis=1)][:3].tolist()
        raise InputError(f"held-out group(s) {missing} have no morphology cells.",
                         "pass the morphology of every held-out group")  # fmt: skip
    return train_m, test_m


def nearest_group(
    expr_train: Cells, morph_train: Cells, morph_test: Cells, test_labels: pd.Series,
    n_cells: int, rng,
) -> Cells:  # fmt: skip
    """The expression cells of the training group with the nearest mean morphology (Euclidean,
    on the standardised features of ``morph_*``)."""
    train_m, test_m = _morph_means(morph_train, morph_test, test_labels)
    train_m = train_m.loc[train_m.index.isin(set(expr_train.groups))]
    d = ((test_m.to_numpy()[:, None, :] - train_m.to_numpy()[None, :, :]) ** 2).sum(axis=2)
    nearest = train_m.index.to_numpy()[np.argmin(d, axis=1)]
    rows = [_draw(np.flatnonzero(expr_train.groups == n), n_cells, rng) for n in nearest]
    g, lab = _targets(test_labels, n_cells)
    return Cells(expr_train.x[np.concatenate(rows)], g, lab)


def ridge(
    expr_train: Cells, morph_train: Cells, morph_test: Cells, test_labels: pd.Series,
    space: ExpressionSpace, n_cells: int, rng,
) -> Cells:  # fmt: skip
    """Ridge from mean morphology to pseudo-bulk, cells drawn around the prediction.

    ``RidgeCV`` (alpha by efficient leave-one-out over :data:`RIDGE_ALPHAS`) is fitted on the
    training groups: X = mean standardised morphology, Y = mean log1p expression. A predicted
    cell is ``prediction + e @ components`` with ``e ~ N(0, S)``, ``S`` the covariance of the
    training cells' deviations from their group mean in the evaluation PC space.
    """
    train_m, test_m = _morph_means(morph_train, morph_test, test_labels)
    bulk = expr_train.means()
    common = train_m.index.intersection(bulk.index)
    if len(common) < 3:
        raise InputError(f"ridge needs 3+ training groups with both modalities, got {len(common)}.",
                         "train on more treatments")  # fmt: skip
    fit = RidgeCV(alphas=RIDGE_ALPHAS).fit(train_m.loc[common].to_numpy(), bulk.loc[common])
    pred = fit.predict(test_m.to_numpy())
    pcs = space.transform(expr_train.x)
    resid = pcs - pd.DataFrame(pcs).groupby(expr_train.groups).transform("mean").to_numpy()
    cov = np.cov(resid, rowvar=False).reshape(space.n_pcs, space.n_pcs)
    noise = rng.multivariate_normal(np.zeros(space.n_pcs), cov, size=(len(pred), n_cells))
    x = pred[:, None, :] + noise @ space.components
    g, lab = _targets(test_labels, n_cells)
    return Cells(x.reshape(-1, pred.shape[1]), g, lab)


@baseline("train_mean", "train mean")
def _train_mean(inp: BaselineInputs) -> Cells:
    return train_mean(inp.data.expr_train, inp.labels, inp.n_cells, inp.rng)


@baseline("lookup", "same-treatment lookup")
def _lookup(inp: BaselineInputs) -> Cells:
    return lookup(inp.data.expr_train, inp.labels, inp.n_cells, inp.rng)


@baseline("nearest_group", "nearest group")
def _nearest_group(inp: BaselineInputs) -> Cells:
    d = inp.data
    return nearest_group(d.expr_train, d.morph_train, d.morph_test, inp.labels, inp.n_cells,
                         inp.rng)  # fmt: skip


@baseline("ridge", "ridge")
def _ridge(inp: BaselineInputs) -> Cells:
    d = inp.data
    return ridge(d.expr_train, d.morph_train, d.morph_test, inp.labels, inp.space, inp.n_cells,
                 inp.rng)  # fmt: skip


@baseline("unconditional", "unconditional", needs_model=True)
def _unconditional(inp: BaselineInputs) -> Cells:
    return inp.generate(0.0)


# ----------------------------------------------------------------------------------------------
# recognition: what naming the treatment from the well's morphology gives


def _distinct(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``rows`` without replacement (all of them again, shuffled, when fewer): a copied
    cell twice biases the unbiased energy distance upwards."""
    out = [rng.permutation(rows) for _ in range(-(-n // max(len(rows), 1)))]
    return np.concatenate(out)[:n] if out else rows[:0]


def _apportion(p: np.ndarray, n: int) -> np.ndarray:
    raw = p / p.sum() * n
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts


def training_wells(data: EvaluationData) -> tuple[Wells, np.ndarray]:
    """The training wells in the evaluation views (mean morphology, pseudo-bulk, labels) and
    the names of their groups."""
    m, bulk = data.morph_train.means(), data.expr_train.means()
    names = m.index.intersection(bulk.index)
    x, g = data.morph_train.x, data.morph_train.groups
    centred = x - m.reindex(g).to_numpy()
    labels = data.morph_train.label_of().reindex(names).to_numpy().astype(str)
    counts = pd.Series(g).value_counts().reindex(names).to_numpy()
    cov = centred.T @ centred / max(len(x) - len(m), 1)
    wells = Wells(m.loc[names].to_numpy(), bulk.loc[names].to_numpy(), labels, labels, counts,
                  cov, data.control)  # fmt: skip
    return wells, names.to_numpy()


def _whitened(inp: BaselineInputs) -> tuple[Wells, np.ndarray, np.ndarray]:
    """The training wells, and both sets of well means whitened by their sampling noise plus
    the replicate spread (the mean head's space): ``(wells, train_z, test_z)``."""
    wells, _ = training_wells(inp.data)
    W, _ = fit_space(wells)
    _, test_m = _morph_means(inp.data.morph_train, inp.data.morph_test, inp.labels)
    return wells, wells.m @ W, test_m.to_numpy() @ W


def _posterior(inp: BaselineInputs) -> tuple[TreatmentPosterior, np.ndarray]:
    """The closed-set treatment posterior of every held-out well, and the well's whitened mean."""
    wells, train_z, test_z = _whitened(inp)
    post = TreatmentPosterior.fit(train_z, wells.labels, wells.control,
                                  MeanHeadConfig().temperature, 0.0)  # fmt: skip
    return post, test_z


def _copy(inp: BaselineInputs, classes: np.ndarray, weights: np.ndarray) -> Cells:
    """``n_cells`` distinct training cells per held-out group, from the treatments ``classes``
    in proportion to each group's ``weights`` row."""
    train = inp.data.expr_train
    rows = {t: np.flatnonzero(train.labels == t) for t in classes}
    picks = [np.concatenate([_distinct(rows[t], c, inp.rng) for t, c in
                             zip(classes, _apportion(w, inp.n_cells), strict=True) if c])
             for w in weights]  # fmt: skip
    g, lab = _targets(inp.labels, inp.n_cells)
    return Cells(train.x[np.concatenate(picks)], g, lab)


@baseline("recognise_copy", "recognise-and-copy")
def _recognise_copy(inp: BaselineInputs) -> Cells:
    post, z = _posterior(inp)
    nearest = ((z[:, None, :] - post.centroids[None]) ** 2).sum(2).argmin(1)
    return _copy(inp, post.classes, np.eye(len(post.classes))[nearest])


@baseline("posterior_lookup", "group-posterior lookup")
def _posterior_lookup(inp: BaselineInputs) -> Cells:
    post, z = _posterior(inp)
    return _copy(inp, post.classes, post.proba(z)[:, :-1])


def _around(inp: BaselineInputs, pred: np.ndarray) -> Cells:
    """Cells drawn around predicted pseudo-bulks ``"groups genes"`` with the training
    within-group residual covariance in the evaluation PC space (as :func:`ridge`)."""
    space, train = inp.space, inp.data.expr_train
    pcs = space.transform(train.x)
    resid = pcs - pd.DataFrame(pcs).groupby(train.groups).transform("mean").to_numpy()
    cov = np.cov(resid, rowvar=False).reshape(space.n_pcs, space.n_pcs)
    noise = inp.rng.multivariate_normal(np.zeros(space.n_pcs), cov, size=(len(pred), inp.n_cells))
    g, lab = _targets(inp.labels, inp.n_cells)
    return Cells((pred[:, None, :] + noise @ space.components).reshape(-1, pred.shape[1]), g, lab)


@baseline("kernel_ridge", "kernel ridge")
def _kernel_ridge(inp: BaselineInputs) -> Cells:
    wells, train_z, test_z = _whitened(inp)
    krr = select_kernel_ridge(train_z, wells.y, wells.compounds, MeanHeadConfig(), wells.control)
    return _around(inp, krr.predict(test_z)[0])


@baseline("mean_head_copy", "mean head + copied residuals", needs_model=True)
def _mean_head_copy(inp: BaselineInputs) -> Cells | None:
    model, train = inp.model, inp.data.expr_train
    head = model.mean_head if model is not None else None
    if head is None:
        return None
    _, test_m = _morph_means(inp.data.morph_train, inp.data.morph_test, inp.labels)
    z = head.represent(test_m.to_numpy())
    pred = head.predict(z, model.group_stats["pseudobulk"].astype(np.float64))
    centroids = head.represent(np.vstack([model.group_stats["morph_mean"][g].mean(axis=0)
                                          for g in head.class_groups]))  # fmt: skip
    nearest = ((z[:, None, :] - centroids[None]) ** 2).sum(2).argmin(1)
    names = np.asarray(model.registry.group_names)
    resid = train.x - train.means().reindex(train.groups).to_numpy()
    picks = [_distinct(np.flatnonzero(np.isin(train.groups, names[head.class_groups[c]])),
                       inp.n_cells, inp.rng) for c in nearest]  # fmt: skip
    g, lab = _targets(inp.labels, inp.n_cells)
    return Cells(np.concatenate([p[None] + resid[i] for p, i in zip(pred, picks, strict=True)]),
                 g, lab)  # fmt: skip
