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

import anndata as ad
import numpy as np

from .. import _keys as K
from ..config import SplitConfig
from ..data import Split, pair_by_treatment
from ..data.morphology import read_h5ad
from ..data.pairing import PairedData
from ..data.transforms import dense, log1p_view
from ..errors import InputError
from ..io import atomic_path, sha256_file, write_json
from ..model import PhenoSeqModel, load_training, read_like_training
from ..train import resolve_device
from .baselines import BaselineInputs, predict_all
from .cells import Cells, EvaluationData
from .space import fit_space
from .suite import Evaluation, score
from .uncertainty import score_summary

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


def _log1p(model: PhenoSeqModel, adata: ad.AnnData, what: str) -> np.ndarray:
    """The analysis view of ``adata``'s model genes (its ``log1p`` layer when it has one)."""
    sub = model.registry.select_genes(adata, what)
    if K.LOG1P in sub.layers:
        return dense(sub.layers[K.LOG1P]).astype(np.float64)
    return log1p_view(sub.X, model.registry.kind)


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
    device: str | None = None,
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
    t0 = time.monotonic()
    model_dir = None if isinstance(model, PhenoSeqModel) else str(model)
    model = model if isinstance(model, PhenoSeqModel) else PhenoSeqModel.load(model)
    if device is not None:  # where the unconditional baseline is sampled
        model.to(resolve_device(device))
    reg = model.registry
    gen = generated if isinstance(generated, ad.AnnData) else read_h5ad(Path(generated))
    morph, expr = read_like_training(model, morphology, expression)
    train = load_training(model, train_expression, train_morphology)

    # held-out pairing, then the leak check on every group we were given
    present = {str(v) for obs, side in ((morph.obs, "morphology"), (expr.obs, "expression"))
               for v in reg.key_obs(obs, side).get(reg.label_key, [])}  # fmt: skip
    control = reg.control if reg.control in present else None
    pair_spec, label_spec = reg.key_specs()
    test = pair_by_treatment(morph, expr, pair_spec, label_spec, control, SplitConfig())
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

    x_train = _log1p(model, t_expr, "training expression")
    data = EvaluationData(
        expr_train=cells(x_train, t_expr.obs[K.GROUP], t_labels),
        morph_train=cells(model.normalize_features(t_morph).astype(np.float64),
                          t_morph.obs[K.GROUP], t_labels),
        expr_test=cells(_log1p(model, test.expression, "held-out expression"),
                        test.expression.obs[K.GROUP], labels),
        morph_test=cells(model.normalize_features(test.morphology).astype(np.float64),
                         test.morphology.obs[K.GROUP], labels),
        genes=list(genes), control=reg.control,
    )  # fmt: skip
    keep = np.isin(gen_groups, labels.index)
    model_cells = cells(_log1p(model, gen, "generated expression")[keep], gen_groups[keep],
                        labels)  # fmt: skip
    space = fit_space(x_train, seed=seed)
    n_cells = int(np.median(np.unique(model_cells.groups, return_counts=True)[1]))
    inputs = BaselineInputs(data, space, n_cells, np.random.default_rng(seed + 1),
                            _unconditional(model, test, gen, n_cells, seed, progress),
                            model)  # fmt: skip
    methods = {"model": model_cells, **predict_all(inputs)}
    ev = score(data, methods, space, seed=seed, k=k)
    if summary is not None:
        summ = summary if isinstance(summary, ad.AnnData) else read_h5ad(Path(summary))
        ev.metrics["uncertainty"] = score_summary(model, summ, expr)
    ev.metrics["provenance"] = {
        "model": model_dir, "phenoseq_version": gen.uns.get(K.UNS, {}).get("version"),
        "sampler": {k_: gen.uns.get(K.UNS, {}).get(k_) for k_ in ("sampler", "n_steps",
                                                                    "guidance", "seed")},
        "n_cells_per_group": n_cells, "seconds": time.monotonic() - t0,
    }  # fmt: skip
    return ev


def _unconditional(model: PhenoSeqModel, test: PairedData, gen: ad.AnnData, n_cells: int,
                   seed: int, progress: bool):  # fmt: skip
    """``generate(guidance)``: the model's cells for the held-out morphology with the generated
    cells' sampler settings (the unconditional baseline calls it with guidance 0)."""
    info = gen.uns.get(K.UNS, {})

    def generate(guidance: float) -> Cells:
        labels = test.groups["label"].astype(str)
        morph = test.morphology[test.morphology.obs[K.GROUP].isin(labels.index)]
        out = model.generate(morph, n_cells=n_cells, n_steps=int(info.get("n_steps", 20)),
                             guidance=guidance, sampler=info.get("sampler", "dpmpp_2m"),
                             seed=seed, progress=progress)  # fmt: skip
        g = out.obs[K.GROUP].astype(str).to_numpy()
        return Cells(_log1p(model, out, "unconditional"), g, labels.reindex(g).to_numpy())

    return generate


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


def evaluate_files(model, generated, expression, morphology, out: str | Path,
                   train_expression=None, train_morphology=None, **kw) -> Evaluation:  # fmt: skip
    """``phenoseq evaluate``: :func:`evaluate` (same arguments, ``kw`` included), then
    :func:`write_evaluation` to ``out``."""
    ev = evaluate(model, generated, expression, morphology, train_expression, train_morphology,
                  **kw)  # fmt: skip
    write_evaluation(ev, out)
    return ev


__all__ = ["evaluate", "evaluate_files", "plots_path", "write_evaluation"]
