"""Split-conformal calibration on groups held out of training (the split's ``calib`` role).

For every calibration group and gene the normalised nonconformity score
``|real - centre| / (sd + eps)``; per gene and level the conformal quantile ``q_g`` of that
gene's scores over the groups sets the half-width ``q_g * (sd + eps)``. For held-out groups
exchangeable with the calibration groups this covers every gene's real pseudo-bulk at the
nominal rate. With too few calibration groups for a level (fewer than
``1 / (1 - level) - 1``), that level falls back to one multiplier pooled over genes (coverage on
average over genes). The same is done for the delta vs the control of the same batch, and the
OOD reference is the score of every seen calibration group.
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
from .conformal import conformal_quantile, nonconformity, per_gene_quantiles, spread_floor
from .draws import Draws, controls, deltas, draw
from .ood import novel_groups, ood_distances, ood_score

CALIBRATION_FILE = "calibration.json"


@dataclass
class Calibration:
    """What :func:`calibrate` stores in the model directory (``calibration.json``)."""

    levels: list[float]
    q_bulk: list[float]  # conformal multipliers of (sd + eps) pooled over genes, per level
    q_delta: list[float] | None
    q_novel: list[float] | None  # multipliers from calibration groups of unseen treatments
    ood_scale: list[float]  # medians of the two OOD distances over seen calibration groups
    ood_reference: list[float]  # ood_score of every seen calibration group
    n_groups: int
    n_draws: int
    n_cells: int
    scores_summary: dict
    # per level, one multiplier per gene (None: too few groups for that level -> pooled)
    q_bulk_gene: list[list[float] | None] | None = None
    q_delta_gene: list[list[float] | None] | None = None
    eps: float | None = None  # of the pseudo-bulk scores (None: a file from before it was kept)
    eps_delta: float | None = None
    sample: dict | None = None  # the sampler settings of the draws (None: an older file)

    def multipliers(self, kind: str, level: float) -> float | np.ndarray | None:
        """The multiplier(s) of ``kind`` ("bulk" or "delta") at ``level``: per gene when
        calibrated per gene, else pooled; None when that kind was not calibrated."""
        k = self.levels.index(level)
        per_gene = getattr(self, f"q_{kind}_gene")
        if per_gene is not None and per_gene[k] is not None:
            return np.asarray(per_gene[k], np.float32)
        pooled = getattr(self, f"q_{kind}")
        return None if pooled is None else pooled[k]

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


def _delta_multipliers(model, d: Draws, real: pd.DataFrame, seen: list[str], levels) -> dict:
    """Conformal multipliers of the deltas vs the control of the same batch (seen groups)."""
    ctrl = {x: c for x, c in controls(model, d.obs.reset_index(), d.groups).items()
            if x in seen and c != x and c in real.index}  # fmt: skip
    have, dd = deltas(d, ctrl)
    if not have:
        return {"q_delta": None, "q_delta_gene": None, "eps_delta": None, "n": 0}
    real_d = real.loc[have].to_numpy() - real.loc[[ctrl[x] for x in have]].to_numpy()
    eps = spread_floor(dd.std(axis=1, ddof=1))
    s = nonconformity(dd, real_d, eps)
    return {"q_delta": [conformal_quantile(s, lv) for lv in levels], "eps_delta": eps,
            "q_delta_gene": [per_gene_quantiles(s, lv) for lv in levels],
            "n": len(have)}  # fmt: skip


def calibrate(
    model: PhenoSeqModel,
    morphology: ad.AnnData,
    expression: ad.AnnData,
    config: UncertaintyConfig | None = None,
    sample: SampleConfig | None = None,
    progress: bool = True,
) -> Calibration:
    """Conformal multipliers and the OOD reference from calibration groups (real data of groups
    held out of training): their morphology is generated from, their expression is the truth."""
    cfg, sample = config or UncertaintyConfig(), sample or SampleConfig()
    cond = model.prepare(morphology)
    _check_held_out(model, cond.groups)
    real = real_pseudobulk(model, expression)
    d = draw(model, cond, cfg, sample, progress)
    novel = set(novel_groups(model, d.groups))
    shared = [x for x in d.groups if x in real.index]
    seen = [x for x in shared if x not in novel]
    if len(seen) < 5:
        raise InputError(
            f"only {len(seen)} calibration group(s) of treatments seen in training "
            "have both modalities.",
            "hold out a calibration replicate (--calib) with several groups",
        )
    eps, levels = spread_floor(d.spread), list(cfg.levels)

    def scores(names: list[str]) -> np.ndarray:
        return nonconformity(d.values[d.index(names)], real.loc[names].to_numpy(), eps)

    s_bulk = scores(seen)
    unseen = [x for x in shared if x in novel]
    delta = _delta_multipliers(model, d, real, seen, levels)
    dist = ood_distances(model, cond, seen, sample.seed)
    scale = np.median(dist, axis=0).tolist()
    return Calibration(
        levels=levels, q_bulk=[conformal_quantile(s_bulk, lv) for lv in levels],
        q_delta=delta["q_delta"],
        q_novel=[conformal_quantile(scores(unseen), lv) for lv in levels] if unseen else None,
        ood_scale=scale, ood_reference=ood_score(dist, scale).tolist(), n_groups=len(shared),
        n_draws=cfg.n_draws, n_cells=cfg.n_cells_per_draw,
        scores_summary={"bulk_median": float(np.median(s_bulk)), "n_seen_groups": len(seen),
                        "n_delta_groups": delta["n"], "n_novel_groups": len(unseen)},
        q_bulk_gene=[per_gene_quantiles(s_bulk, lv) for lv in levels],
        q_delta_gene=delta["q_delta_gene"], eps=eps, eps_delta=delta["eps_delta"],
        sample=to_dict(sample),
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
