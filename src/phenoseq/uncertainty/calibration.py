"""Split-conformal calibration on groups held out of training (the split's ``calib`` role).

For every calibration group and gene the normalised nonconformity score
``|real - centre| / scale`` (:mod:`.spread`: the draws' SD + a floor, and the mean head's
novelty-aware variance); per gene and level the conformal quantile ``q_g`` of that gene's scores
over the groups sets the half-width ``q_g * scale``. For held-out groups exchangeable with the
calibration groups this covers every gene's real pseudo-bulk at the nominal rate. With several
calibration replicates the replicate is the unit (:func:`.conformal.replicate_quantiles`); with
too few groups for a level per gene, that level falls back to one multiplier pooled over genes.
Groups of treatments never trained on ("novel") get their own multipliers when the calibration
data has such groups (Mondrian by novelty). The same is done for the delta vs the control of the
same batch. The references of the confidence (the mean error scale) and of the OOD distance are
those of the seen calibration groups.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .. import _keys as K
from ..config import SampleConfig, UncertaintyConfig, to_dict
from ..errors import InputError
from ..io import atomic_path
from ..model import PhenoSeqModel, load_training, read_like_training, real_pseudobulk
from ..train import resolve_device
from .conformal import guarantee, nonconformity, replicate_quantiles, spread_floor
from .draws import Draws, controls, deltas, draw, replicates_of
from .ood import novel_groups, ood_distances, ood_score
from .spread import error_scale, head_variance

CALIBRATION_FILE = "calibration.json"


@dataclass
class Calibration:
    """What :func:`calibrate` stores in the model directory (``calibration.json``).

    Multipliers per level: ``q_<kind>`` pooled over genes and ``q_<kind>_gene`` per gene
    (None: too few groups for that level), of seen-treatment groups; ``q_<kind>_novel*`` of
    groups of treatments never trained on (None: none in the calibration data). ``kind`` is
    ``bulk`` or ``delta``."""

    levels: list[float]
    q_bulk: list[float]
    q_delta: list[float] | None
    q_novel: list[float] | None  # pooled bulk multipliers of novel groups
    ood_scale: list[float]  # medians of the two OOD distances over seen calibration groups
    ood_reference: list[float]  # ood_score of every seen calibration group
    n_groups: int
    n_draws: int
    n_cells: int
    scores_summary: dict
    q_bulk_gene: list[list[float] | None] | None = None
    q_delta_gene: list[list[float] | None] | None = None
    eps: float | None = None  # of the pseudo-bulk scores (None: a file from before it was kept)
    eps_delta: float | None = None
    sample: dict | None = None  # the sampler settings of the draws (None: an older file)
    q_novel_gene: list[list[float] | None] | None = None
    q_delta_novel: list[float] | None = None
    q_delta_novel_gene: list[list[float] | None] | None = None
    head_scale: bool = False  # the scale includes the mean head's variance
    uncertainty_reference: list[float] | None = None  # mean error scale of seen calib groups
    n_replicates: int = 1
    guarantee: dict | None = None  # level -> what the intervals promise

    def multipliers(
        self, kind: str, level: float, novel: bool = False
    ) -> float | np.ndarray | None:
        """The multiplier(s) of ``kind`` ("bulk" or "delta") at ``level`` for seen or novel
        groups: per gene when calibrated per gene, else pooled; novel groups fall back to the
        seen groups' multipliers without novel calibration groups; None when not calibrated."""
        k = self.levels.index(level)
        names = [f"q_{kind}"]
        if novel:
            names.insert(0, "q_novel" if kind == "bulk" else "q_delta_novel")
        for i, name in enumerate(names):
            gene, pooled = getattr(self, f"{name}_gene"), getattr(self, name)
            if gene is not None and gene[k] is not None:
                return np.asarray(gene[k], np.float32)
            if pooled is not None and (np.isfinite(pooled[k]) or i == len(names) - 1):
                return pooled[k]
        return None

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Calibration | None:
        path = Path(folder) / CALIBRATION_FILE
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise InputError(f"cannot be read ({exc}).", "re-run `phenoseq calibrate`",
                             path) from exc  # fmt: skip


def _check_held_out(model: PhenoSeqModel, groups: list[str]) -> None:
    leaked = sorted(set(groups) & set(model.registry.groups_of_role("train")))
    if leaked:
        raise InputError(
            f"{len(leaked)} calibration group(s) were training groups, e.g. {leaked[:3]}.",
            "calibrate on the split's calib groups only",
        )


def _multipliers(scores: np.ndarray, reps: np.ndarray, levels: list[float]) -> tuple[list, list]:
    """Per level: per-gene and pooled multipliers with the replicate as the unit."""
    pairs = [replicate_quantiles(scores, reps, lv) for lv in levels]
    return [g for g, _ in pairs], [p for _, p in pairs]


@dataclass
class Scored:
    """The calibration groups' draws scored against their real pseudo-bulks."""

    d: Draws
    real: pd.DataFrame
    scale: np.ndarray  # "groups genes"
    head_var: np.ndarray  # "groups genes"
    reps: np.ndarray
    seen: list[str]
    novel: list[str]


def _delta_part(model, sc: Scored, names: list[str], eps: float | None, levels) -> dict:
    """Delta-vs-control scores of ``names`` (with their control in the data) -> multipliers."""
    d = sc.d
    ctrl = {x: c for x, c in controls(model, d.obs.reset_index(), d.groups).items()
            if x in names and c != x and c in sc.real.index}  # fmt: skip
    have, dd = deltas(d, ctrl)
    if not have:
        return {"gene": None, "pooled": None, "eps": eps, "n": 0}
    eps = spread_floor(dd.std(axis=1, ddof=1)) if eps is None else eps
    var = sc.head_var[d.index(have)] + sc.head_var[d.index([ctrl[x] for x in have])]
    real_d = sc.real.loc[have].to_numpy() - sc.real.loc[[ctrl[x] for x in have]].to_numpy()
    s = nonconformity(dd, real_d, error_scale(dd.std(axis=1, ddof=1), eps, var))
    gene, pooled = _multipliers(s, sc.reps[d.index(have)], levels)
    return {"gene": gene, "pooled": pooled, "eps": eps, "n": len(have)}


def _score(model, cond, real, d: Draws, seed: int) -> Scored:
    novel = set(novel_groups(model, d.groups))
    shared = [x for x in d.groups if x in real.index]
    seen = [x for x in shared if x not in novel]
    if len(seen) < 5:
        raise InputError(
            f"only {len(seen)} calibration group(s) of treatments seen in training "
            "have both modalities.",
            "hold out a calibration replicate (--calib) with several groups",
        )
    head_var = head_variance(model, cond, d.groups, seed)
    scale = error_scale(d.spread, spread_floor(d.spread), head_var)
    return Scored(d, real, scale, head_var, replicates_of(model, d.obs.reset_index()), seen,
                  [x for x in shared if x in novel])  # fmt: skip


def calibrate(
    model: PhenoSeqModel,
    morphology: ad.AnnData,
    expression: ad.AnnData,
    config: UncertaintyConfig | None = None,
    sample: SampleConfig | None = None,
    progress: bool = True,
) -> Calibration:
    """Conformal multipliers and the confidence / OOD references from calibration groups (real
    data of groups held out of training): their morphology is generated from, their expression
    is the truth."""
    cfg, sample = config or UncertaintyConfig(), sample or SampleConfig()
    cond = model.prepare(morphology)
    _check_held_out(model, cond.groups)
    real = real_pseudobulk(model, expression)
    sc = _score(model, cond, real, draw(model, cond, cfg, sample, progress), sample.seed)
    d, levels = sc.d, list(cfg.levels)

    def scores(names: list[str]) -> np.ndarray:
        idx = d.index(names)
        return nonconformity(d.values[idx], real.loc[names].to_numpy(), sc.scale[idx])

    bulk = _multipliers(scores(sc.seen), sc.reps[d.index(sc.seen)], levels)
    new = _multipliers(scores(sc.novel), sc.reps[d.index(sc.novel)], levels) if sc.novel else (
        None, None)  # fmt: skip
    delta = _delta_part(model, sc, sc.seen, None, levels)
    delta_new = _delta_part(model, sc, sc.novel, delta["eps"], levels)
    dist = ood_distances(model, cond, sc.seen, sample.seed)
    scale = np.median(dist, axis=0).tolist()
    n_reps = len(np.unique(sc.reps[d.index(sc.seen)]))
    return Calibration(
        levels=levels, q_bulk=bulk[1], q_delta=delta["pooled"], q_novel=new[1],
        ood_scale=scale, ood_reference=ood_score(dist, scale).tolist(),
        n_groups=len(sc.seen) + len(sc.novel), n_draws=cfg.n_draws,
        n_cells=cfg.n_cells_per_draw,
        scores_summary={"bulk_median": float(np.median(scores(sc.seen))),
                        "n_seen_groups": len(sc.seen), "n_delta_groups": delta["n"],
                        "n_novel_groups": len(sc.novel)},
        q_bulk_gene=bulk[0], q_delta_gene=delta["gene"], eps=spread_floor(d.spread),
        eps_delta=delta["eps"], sample=to_dict(sample), q_novel_gene=new[0],
        q_delta_novel=delta_new["pooled"], q_delta_novel_gene=delta_new["gene"],
        head_scale=model.mean_head is not None,
        uncertainty_reference=sc.scale[d.index(sc.seen)].mean(axis=1).tolist(),
        n_replicates=n_reps, guarantee={f"{lv:g}": guarantee(n_reps, lv) for lv in levels},
    )  # fmt: skip


def calibrate_model(
    model_dir: str | Path,
    morphology: str | Path | ad.AnnData | None = None,
    expression: str | Path | ad.AnnData | None = None,
    config: UncertaintyConfig | None = None,
    sample: SampleConfig | None = None,
    progress: bool = True,
    device: str = "auto",
) -> Calibration:
    """``phenoseq calibrate``: calibrate a model directory and store ``calibration.json`` in it.

    Default data: the model's recorded training inputs, restricted to the split's ``calib``
    groups (held out of training); or explicit calibration files (read as the training files
    were).
    """
    model = PhenoSeqModel.load(model_dir).to(resolve_device(device))
    if morphology is None and expression is None:
        m, e = _calib_groups(model, model_dir)
    elif morphology is None or expression is None:
        raise InputError("pass both --morphology and --expression (or neither).",
                         "give the calibration groups' two modalities")  # fmt: skip
    else:
        m, e = read_like_training(model, morphology, expression)
    cal = calibrate(model, m, e, config, sample, progress)
    cal.save(model_dir)
    return cal


def _calib_groups(model: PhenoSeqModel, model_dir) -> tuple[ad.AnnData, ad.AnnData]:
    """The calib groups of the model's recorded training data (expression stays on disk when
    backed: its pseudo-bulks are read in blocks)."""
    calib = set(model.registry.groups_of_role("calib"))
    if not calib:
        raise InputError("the model's split has no calib groups.",
                         "train with --calib REPLICATES, or pass --morphology/--expression "
                         "of calibration groups", model_dir)  # fmt: skip
    paired = load_training(model)
    m = paired.morphology[paired.morphology.obs[K.GROUP].isin(calib)].copy()
    e = paired.expression
    if not e.isbacked:
        e = e[e.obs[K.GROUP].isin(calib)].copy()
    return m, e
