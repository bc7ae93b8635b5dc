"""``phenoseq evaluate`` as a library call: model + generated + held-out files -> metrics.

:func:`evaluate` finds the training data through the model directory (recorded paths and
sha256, or explicit overrides), refuses held-out groups that were in training, builds the
baselines from training data only and calls :func:`phenoseq.evaluate.suite.score`.
:func:`write_evaluation` writes ``metrics.json`` and, beside it, the plot data
(``<stem>.plots.npz``) that ``phenoseq report`` draws.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np

from .. import _keys as K
from ..config import InputConfig
from ..data import Split, SplitConfig, load_paired, pair_by_treatment, read_expression
from ..data.morphology import read_h5ad, read_morphology
from ..data.pairing import PairedData
from ..errors import InputError
from ..io import atomic_path, sha256_file, write_json
from . import baselines as B
from .cells import Cells
from .space import fit_space, log1p_view
from .suite import Evaluation, EvaluationData, score

if TYPE_CHECKING:
    from ..model import PhenoSeqModel


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
        path = Path(record[key])
        flag = f"--train-{key}"
        if not path.exists():
            raise InputError(f"the model's training {key} file is missing.",
                             f"pass {flag} with its new location", path)  # fmt: skip
        if key in sha and sha256_file(path) != sha[key]:
            raise InputError(f"the model's training {key} file changed since training "
                             "(sha256 differs).", f"restore it or pass {flag}", path)  # fmt: skip
    paired = load_paired(InputConfig.from_dict(record))
    trained = {g for g, r in zip(model.registry.group_names, model.registry.group_roles,
                                 strict=True) if r == "train"}  # fmt: skip
    missing = trained - set(paired.split.groups("train"))
    if missing:
        raise InputError(f"{len(missing)} training group(s) of the model are not training groups "
                         f"of this data, e.g. {sorted(missing)[:3]}.",
                         "pass the training files the model was trained on")  # fmt: skip
    return paired


#: training cells per group read into memory for the baselines and the evaluation space when
#: the training expression is backed (on disk)
BACKED_TRAIN_CELLS_PER_GROUP = 1000


def _sample_per_group(adata: ad.AnnData, rows: np.ndarray, n: int, seed: int) -> ad.AnnData:
    """At most ``n`` random rows of every pairing group among ``rows`` (a mask), in file
    order, read into memory (``adata`` may be backed)."""
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(rows)
    _, inverse = np.unique(adata.obs[K.GROUP].astype(str).to_numpy()[idx], return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    keep = [rng.choice(part, min(n, len(part)), replace=False)
            for part in np.split(idx[order], bounds)]  # fmt: skip
    return adata[np.sort(np.concatenate(keep))].to_memory()


def _read(x: ad.AnnData | str | Path, reader) -> ad.AnnData:
    return x if isinstance(x, ad.AnnData) else reader(Path(x))


def _log1p(adata: ad.AnnData, genes: list[str], kind: str, what: str) -> np.ndarray:
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise InputError(f"{what} lacks {len(missing)} of the model's genes, e.g. {missing[:3]}.",
                         "pass expression with the model's genes")  # fmt: skip
    sub = adata[:, genes]
    if K.LOG1P in sub.layers:
        return np.asarray(sub.layers[K.LOG1P], dtype=np.float64)
    return log1p_view(sub.X, kind)


def evaluate(
    model: PhenoSeqModel | str | Path,
    generated: ad.AnnData | str | Path,
    expression: ad.AnnData | str | Path,
    morphology: ad.AnnData | str | Path,
    train_expression: str | Path | None = None,
    train_morphology: str | Path | None = None,
    seed: int = 0,
    k: int = 50,
    progress: bool = True,
    summary: ad.AnnData | str | Path | None = None,
) -> Evaluation:
    """Evaluate generated cells against real held-out cells, with baselines and ceilings.

    Parameters
    ----------
    model
        A trained :class:`~phenoseq.model.PhenoSeqModel` or its directory.
    generated
        Output of :meth:`~phenoseq.model.PhenoSeqModel.generate` for the held-out morphology.
    expression, morphology
        Real held-out expression and morphology (AnnData or files). Every pairing group must be
        held out from training (a seen treatment in a new replicate is fine).
    train_expression, train_morphology
        Override the training files recorded in the model directory.
    seed
        Seed of every subsample, split-half and baseline draw (same seed, same numbers).
    k
        Number of top DEGs compared.
    summary
        The per-group summary of ``generate --summary`` for the same morphology: adds the
        ``uncertainty`` section (interval coverage and width per level, seen / unseen, pseudo-bulk
        and delta; OOD AUROC), see :func:`phenoseq.uncertainty.score_summary`.

    Returns
    -------
    :class:`~phenoseq.evaluate.suite.Evaluation` (``metrics`` dict and ``plots`` arrays).
    """
    from ..model import PhenoSeqModel

    t0 = time.monotonic()
    model_dir = None if isinstance(model, PhenoSeqModel) else str(model)
    model = model if isinstance(model, PhenoSeqModel) else PhenoSeqModel.load(model)
    reg = model.registry
    rec = reg.inputs
    kind = reg.kind
    gen = _read(generated, read_h5ad)
    expr = _read(expression, lambda p: read_expression(
        p, kind=rec.get("expression_kind", "counts"), layer=rec.get("layer"),
        obsm_key=rec.get("expression_obsm")))  # fmt: skip
    morph = _read(morphology, lambda p: read_morphology(
        p, obsm_key=rec.get("morphology_obsm"), features=rec.get("features")))  # fmt: skip
    train = load_training(model, train_expression, train_morphology)

    # held-out pairing, then the leak check on every group we were given
    present = set(map(str, morph.obs.get(reg.label_key, []))) | set(
        map(str, expr.obs.get(reg.label_key, [])))  # fmt: skip
    control = reg.control if reg.control in present else None
    test = pair_by_treatment(morph, expr, reg.pair_key, reg.label_key, control, SplitConfig())
    if K.GROUP not in gen.obs:
        raise InputError(f"generated cells have no obs['{K.GROUP}'] column.",
                         "pass the output of `phenoseq generate`")  # fmt: skip
    gen_groups = gen.obs[K.GROUP].astype(str).to_numpy()
    split = Split.from_dict(reg.split)
    split.check_held_out(list(test.groups.index) + list(np.unique(gen_groups)))
    labels = test.groups["label"].astype(str)
    missing = sorted(set(test.expression.obs[K.GROUP]) - set(gen_groups))
    if missing:
        raise InputError(f"no generated cells for {len(missing)} held-out group(s), e.g. "
                         f"{missing[:3]}.", "generate from the held-out morphology "
                         "(phenoseq generate --morphology M_TEST)")  # fmt: skip

    # views: log1p of the model's genes; morphology standardised with the model's scaler
    genes = reg.genes
    is_train = (train.expression.obs[K.ROLE] == "train").to_numpy()
    if train.expression.isbacked:  # trained --backed: a bounded per-group sample of its cells
        t_expr = _sample_per_group(train.expression, is_train, BACKED_TRAIN_CELLS_PER_GROUP, seed)
    else:
        t_expr = train.expression[is_train]
    t_morph = train.morphology[train.morphology.obs[K.ROLE] == "train"]
    t_labels = train.groups["label"].astype(str)

    def cells(x: np.ndarray, groups: np.ndarray, lab) -> Cells:
        groups = np.asarray(groups).astype(str)
        return Cells(x, groups, lab.reindex(groups).to_numpy())

    x_train = _log1p(t_expr, genes, kind, "training expression")
    data = EvaluationData(
        expr_train=cells(x_train, t_expr.obs[K.GROUP], t_labels),
        morph_train=cells(model.normalize_features(t_morph).astype(np.float64),
                          t_morph.obs[K.GROUP], t_labels),
        expr_test=cells(_log1p(test.expression, genes, kind, "held-out expression"),
                        test.expression.obs[K.GROUP], labels),
        morph_test=cells(model.normalize_features(test.morphology).astype(np.float64),
                         test.morphology.obs[K.GROUP], labels),
        genes=list(genes), control=reg.control,
    )  # fmt: skip
    keep = np.isin(gen_groups, labels.index)
    model_cells = cells(_log1p(gen, genes, kind, "generated expression")[keep], gen_groups[keep],
                        labels)  # fmt: skip
    space = fit_space(x_train, seed=seed)
    n_cells = int(np.median(np.unique(model_cells.groups, return_counts=True)[1]))
    methods = {"model": model_cells, **_baselines(model, data, test, gen, space, n_cells, seed,
                                                  progress)}  # fmt: skip
    ev = score(data, methods, space, seed=seed, k=k)
    if summary is not None:
        from ..uncertainty import score_summary

        ev.metrics["uncertainty"] = score_summary(model, _read(summary, read_h5ad), expr)
    ev.metrics["provenance"] = {
        "model": model_dir, "phenoseq_version": gen.uns.get(K.UNS, {}).get("version"),
        "sampler": {k_: gen.uns.get(K.UNS, {}).get(k_) for k_ in ("sampler", "n_steps",
                                                                    "guidance", "seed")},
        "n_cells_per_group": n_cells, "seconds": time.monotonic() - t0,
    }  # fmt: skip
    return ev


def _baselines(model, data: EvaluationData, test: PairedData, gen: ad.AnnData, space,
               n_cells: int, seed: int, progress: bool) -> dict[str, Cells]:  # fmt: skip
    """Every baseline's cells for the held-out groups (training data only)."""
    rng = np.random.default_rng(seed + 1)
    labels = data.test_labels()
    out = {
        "train_mean": B.train_mean(data.expr_train, labels, n_cells, rng),
        "lookup": B.lookup(data.expr_train, labels, n_cells, rng),
        "nearest_group": B.nearest_group(data.expr_train, data.morph_train, data.morph_test,
                                         labels, n_cells, rng),
        "ridge": B.ridge(data.expr_train, data.morph_train, data.morph_test, labels, space,
                         n_cells, rng),
    }  # fmt: skip
    info = gen.uns.get(K.UNS, {})
    morph = test.morphology[test.morphology.obs[K.GROUP].isin(labels.index)]
    unc = model.generate(morph, n_cells, int(info.get("n_steps", 20)), 0.0,
                         info.get("sampler", "dpmpp_2m"), seed, progress)  # fmt: skip
    g = unc.obs[K.GROUP].astype(str).to_numpy()
    out["unconditional"] = Cells(_log1p(unc, data.genes, model.registry.kind, "unconditional"),
                                 g, labels.reindex(g).to_numpy())  # fmt: skip
    return out


def plots_path(metrics_path: str | Path) -> Path:
    """Where the plot data of ``metrics.json`` lives: ``<stem>.plots.npz`` beside it."""
    p = Path(metrics_path)
    return p.with_name(f"{p.stem}.plots.npz")


def write_evaluation(ev: Evaluation, out: str | Path) -> Path:
    """Write the plot data, then ``metrics.json`` (each atomically; the JSON names the npz)."""
    out = Path(out)
    npz = plots_path(out)
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{k: np.asarray(v) for k, v in ev.plots.items()})
    doc = dict(ev.metrics) | {"plot_data": {"file": npz.name, "sha256": sha256_file(npz)}}
    write_json(doc, out)
    return out


__all__ = ["evaluate", "load_training", "plots_path", "write_evaluation"]
