"""Calibrated uncertainty: per-group draws, split-conformal intervals, and an OOD confidence.

- A *draw* is one generated pseudo-bulk of a group: the mean log-normalised profile of ``N``
  generated cells. ``K`` draws give, per gene, a centre (their mean), a spread (their SD) and
  raw quantile intervals.
- **Split-conformal calibration** (:func:`calibrate`) on calibration groups held out of
  training (the split's ``calib`` role): for every calibration group and gene the normalised
  nonconformity score ``|real - centre| / (sd + eps)``; per gene and level the conformal
  quantile ``q_g`` of that gene's scores over the groups sets the half-width
  ``q_g * (sd + eps)``. For held-out groups exchangeable with the calibration groups this covers
  every gene's real pseudo-bulk at the nominal rate. With too few calibration groups for a level
  (fewer than ``1 / (1 - level) - 1``), that level falls back to one multiplier pooled over
  genes (coverage on average over genes). The same is done for the delta vs the control of the
  same batch.
- **Confidence / OOD**: a group's distance to the training groups, in the condition-embedding
  space and in the raw morphology (mean of normalised features), each divided by its median over
  calibration groups of *seen* treatments and averaged, is the ``ood_score``. Its conformal
  p-value against those calibration groups is the ``confidence`` (0-1: the fraction of
  in-distribution groups that look at least as unusual); ``ood_flag`` = confidence below the
  threshold (default 0.05).

docs/uncertainty.md says how to read and act on these numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from . import _keys as K
from .data.pairing import group_ids, with_key_aliases
from .errors import InputError
from .evaluate.profiles import GroupSums, pseudobulk
from .evaluate.space import log1p_view
from .io import atomic_path

if TYPE_CHECKING:
    from .model import PhenoSeqModel

LEVELS = (0.5, 0.8, 0.9, 0.95)
CALIBRATION_FILE = "calibration.json"


@dataclass
class Draws:
    """``K`` generated pseudo-bulks per group: ``values`` ``"n_groups n_draws n_genes"``."""

    groups: list[str]
    values: np.ndarray
    obs: pd.DataFrame  # one row per group: the morphology columns constant within it

    @property
    def centre(self) -> np.ndarray:
        return self.values.mean(axis=1)

    @property
    def spread(self) -> np.ndarray:
        return self.values.std(axis=1, ddof=1)


def draw(
    model: PhenoSeqModel,
    morphology: ad.AnnData,
    n_draws: int = 20,
    n_cells: int = 50,
    seed: int = 0,
    progress: bool = True,
    **generate_kw,
) -> Draws:
    """``n_draws`` pseudo-bulks of ``n_cells`` generated cells for every group of ``morphology``."""
    if n_draws < 2 or n_cells < 1:
        raise InputError(f"--n-draws must be >= 2 and cells per draw >= 1 (got {n_draws}, "
                         f"{n_cells}).", "raise them")  # fmt: skip
    obs, blocks = model.generate_blocks(morphology, n_draws * n_cells, seed=seed,
                                        progress=progress, **generate_kw)  # fmt: skip
    # one group at a time: memory holds one group's cells, not the whole screen's
    values = np.stack([(log1p if log1p is not None else x).reshape(n_draws, n_cells, -1)
                       .mean(axis=1) for x, log1p, _ in blocks])  # fmt: skip
    first = obs.groupby(K.GROUP, observed=True, sort=False).head(1).set_index(K.GROUP)
    order = [str(g) for g in first.index]
    return Draws(order, values.astype(np.float32), first)


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) level) / n`` empirical quantile of ``scores`` (inf if n is too small)."""
    s = np.sort(np.asarray(scores, float).ravel())
    k = math.ceil((len(s) + 1) * level)
    return float(s[k - 1]) if k <= len(s) else math.inf


def _eps(spread: np.ndarray) -> float:
    return float(max(np.median(spread) * 0.05, 1e-6))


def _scores(values: np.ndarray, truth: np.ndarray, eps: float) -> np.ndarray:
    """Normalised nonconformity ``|truth - mean| / (sd + eps)`` of draws ``"groups K genes"``."""
    return np.abs(truth - values.mean(axis=1)) / (values.std(axis=1, ddof=1) + eps)


def _interval(values: np.ndarray, level: float, q: float | np.ndarray | None, eps: float):
    """``(lower, upper)`` of draws ``"groups K genes"``: ``mean +- q (sd + eps)`` (conformal;
    ``q`` one multiplier or one per gene) or, without a multiplier, the draws' own central
    quantiles."""
    if q is None:
        return np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=1)
    mean, half = values.mean(axis=1), q * (values.std(axis=1, ddof=1) + eps)
    return mean - half, mean + half


def real_pseudobulk(model: PhenoSeqModel, expression: ad.AnnData) -> pd.DataFrame:
    """Mean log-normalised profile of each pairing group of real cells (groups x genes), read
    block by block (so a backed AnnData is never loaded whole)."""
    from .model import expression_blocks

    reg = model.registry
    missing = [gene for gene in reg.genes if gene not in expression.var_names]
    if missing:
        raise InputError(f"expression lacks {len(missing)} of the model's genes, e.g. "
                         f"{missing[:3]}.", "use data with the training genes")  # fmt: skip
    obs = with_key_aliases(expression.obs, reg.pair_key)
    names, g = np.unique(group_ids(obs, reg.pair_key, "expression").astype(str),
                         return_inverse=True)  # fmt: skip
    sums = GroupSums(len(names), len(reg.genes))
    for lo, x in expression_blocks(expression, reg.genes):
        sums.add(log1p_view(x, reg.kind), g[lo : lo + x.shape[0]])
    return pd.DataFrame(sums.means(), index=names, columns=reg.genes)


def _controls(model: PhenoSeqModel, obs: pd.DataFrame, groups: list[str]) -> dict[str, str]:
    """Each group's control group in the same batch (replicate), where one exists."""
    reg = model.registry
    rep_key = reg.split.get("config", {}).get("replicate_key", K.REPLICATE)
    o = with_key_aliases(obs, (reg.label_key, rep_key))
    if reg.control is None or reg.label_key not in o:
        return {}
    is_ctrl = o[reg.label_key].astype(str).to_numpy() == str(reg.control)
    batch = o[rep_key].astype(str).to_numpy() if rep_key in o else np.zeros(len(o), str)
    ctrl_of_batch = {b: g for g, b, c in zip(groups, batch, is_ctrl, strict=True) if c}
    return {g: ctrl_of_batch[b] for g, b in zip(groups, batch, strict=True) if b in ctrl_of_batch}


def _deltas(draws: Draws, controls: dict[str, str]) -> tuple[list[str], np.ndarray]:
    """Draw-wise deltas (group draw k minus its control's draw k) of groups with a control."""
    idx = {g: i for i, g in enumerate(draws.groups)}
    have = [g for g in draws.groups if g in controls and controls[g] in idx]
    if not have:
        return [], np.zeros((0,) + draws.values.shape[1:], np.float32)
    d = np.stack([draws.values[idx[g]] - draws.values[idx[controls[g]]] for g in have])
    return have, d


def novel_groups(model: PhenoSeqModel, groups: list[str]) -> list[str]:
    """Groups whose treatment label was never trained on (unknown groups count as novel)."""
    reg = model.registry
    trained = {lab for lab, r in zip(reg.group_labels, reg.group_roles, strict=True)
               if r == "train"}  # fmt: skip
    labels = dict(zip(reg.group_names, reg.group_labels, strict=True))
    return [g for g in groups if labels.get(g) not in trained]


def ood_distances(model: PhenoSeqModel, morphology: ad.AnnData, groups: list[str],
                  seed: int = 0) -> np.ndarray:  # fmt: skip
    """Per group ``(n_groups, 2)``: nearest-training-group distance of the condition embedding
    and of the mean normalised morphology."""
    reg, stats = model.registry, model.group_stats
    x = model.normalize_features(morphology)
    obs = with_key_aliases(morphology.obs, reg.pair_key)
    g = group_ids(obs, reg.pair_key, "morphology").to_numpy()
    train = [i for i, r in enumerate(reg.group_roles) if r == "train"]
    emb_train = stats["embedding"][train]
    ok = np.isfinite(emb_train).all(axis=1)
    emb_train = emb_train[ok]
    if "morph_mean" not in stats:  # a model saved before this statistic: recompute it
        stats["morph_mean"] = _training_morph_means(model)
    mean_train = stats["morph_mean"][train][ok]
    rng = np.random.default_rng(seed)
    out = np.zeros((len(groups), 2))
    for k, name in enumerate(groups):
        rows = x[g == name]
        e = model.condition_embedding(rows, rng)
        out[k, 0] = np.linalg.norm(emb_train - e, axis=1).min()
        out[k, 1] = np.linalg.norm(mean_train - rows.mean(axis=0), axis=1).min()
    return out


def _training_morph_means(model: PhenoSeqModel) -> np.ndarray:
    """Mean normalised morphology of every registered group, from the recorded training data."""
    from .evaluate.run import load_training

    paired = load_training(model)
    x = model.normalize_features(paired.morphology)
    names, means = pseudobulk(x, paired.morphology.obs[K.GROUP].to_numpy())
    table = pd.DataFrame(means, index=names).reindex(model.registry.group_names)
    return table.to_numpy(np.float32)  # NaN rows: groups without morphology


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


def ood_score(distances: np.ndarray, scale: list[float]) -> np.ndarray:
    """Mean of the two distances, each divided by its calibration median."""
    return (distances / np.maximum(np.asarray(scale), 1e-12)).mean(axis=1)


def confidence(scores: np.ndarray, reference: list[float]) -> np.ndarray:
    """Conformal p-value: ``(1 + #{reference >= score}) / (n + 1)``."""
    ref = np.sort(np.asarray(reference))
    n_ge = len(ref) - np.searchsorted(ref, scores, side="left")
    return (1 + n_ge) / (len(ref) + 1)


def calibrate(
    model: PhenoSeqModel,
    morphology: ad.AnnData,
    expression: ad.AnnData,
    levels: tuple[float, ...] = LEVELS,
    n_draws: int = 20,
    n_cells: int = 50,
    seed: int = 0,
    progress: bool = True,
) -> Calibration:
    """Conformal multipliers and the OOD reference from calibration groups (real data of groups
    held out of training): their morphology is generated from, their expression is the truth."""
    reg = model.registry
    roles = dict(zip(reg.group_names, reg.group_roles, strict=True))
    obs = with_key_aliases(morphology.obs, reg.pair_key)
    g = group_ids(obs, reg.pair_key, "morphology").astype(str)
    leaked = sorted(set(g) & {n for n, r in roles.items() if r == "train"})
    if leaked:
        raise InputError(
            f"{len(leaked)} calibration group(s) were training groups, e.g. {leaked[:3]}.",
            "calibrate on the split's calib groups only",
        )
    real = real_pseudobulk(model, expression)
    d = draw(model, morphology, n_draws, n_cells, seed, progress)
    novel = set(novel_groups(model, d.groups))
    shared = [x for x in d.groups if x in real.index]
    seen = [x for x in shared if x not in novel]
    if len(seen) < 5:
        raise InputError(
            f"only {len(seen)} calibration group(s) of treatments seen in training "
            "have both modalities.",
            "hold out a calibration replicate (--calib) with several groups",
        )
    eps = _eps(d.spread)

    def scores(names: list[str]) -> np.ndarray:
        pick = [d.groups.index(x) for x in names]
        return _scores(d.values[pick], real.loc[names].to_numpy(), eps)

    s_bulk = scores(seen)
    q_bulk = [conformal_quantile(s_bulk, lv) for lv in levels]
    q_bulk_gene = [_per_gene(s_bulk, lv) for lv in levels]
    unseen = [x for x in shared if x in novel]
    q_novel = [conformal_quantile(scores(unseen), lv) for lv in levels] if unseen else None
    # delta vs the control of the same batch
    controls = {x: c for x, c in _controls(model, d.obs.reset_index(), d.groups).items()
                if x in seen and c != x and c in real.index}  # fmt: skip
    have, dd = _deltas(d, controls)
    q_delta = q_delta_gene = eps_delta = None
    if have:
        real_d = real.loc[have].to_numpy() - real.loc[[controls[x] for x in have]].to_numpy()
        eps_delta = _eps(dd.std(axis=1, ddof=1))
        s_delta = _scores(dd, real_d, eps_delta)
        q_delta = [conformal_quantile(s_delta, lv) for lv in levels]
        q_delta_gene = [_per_gene(s_delta, lv) for lv in levels]
    # OOD reference: calibration groups of treatments seen in training
    dist = ood_distances(model, morphology, seen, seed)
    scale = np.median(dist, axis=0).tolist()
    return Calibration(
        levels=list(levels), q_bulk=q_bulk, q_delta=q_delta, q_novel=q_novel, ood_scale=scale,
        ood_reference=ood_score(dist, scale).tolist(), n_groups=len(shared), n_draws=n_draws,
        n_cells=n_cells,
        scores_summary={"bulk_median": float(np.median(s_bulk)), "n_seen_groups": len(seen),
                        "n_delta_groups": len(have), "n_novel_groups": len(unseen)},
        q_bulk_gene=q_bulk_gene, q_delta_gene=q_delta_gene, eps=eps, eps_delta=eps_delta,
    )  # fmt: skip


def _per_gene(scores: np.ndarray, level: float) -> list[float] | None:
    """Conformal quantile of every gene's scores over groups (``"groups genes"``), or None when
    the groups are too few for ``level`` (the quantile would be infinite)."""
    q = [conformal_quantile(scores[:, j], level) for j in range(scores.shape[1])]
    return None if not np.isfinite(q).all() else [float(v) for v in q]


def check_summary_settings(
    calibration: Calibration | None, levels: tuple[float, ...], n_draws: int, n_cells: int
) -> None:
    """Refuse levels the calibration does not have; warn when it is missing or was made with
    other draw settings (its multipliers assume the spread of ``n_draws`` x ``n_cells``)."""
    import warnings

    cal = calibration
    if cal is None:
        warnings.warn("the model is not calibrated: intervals are raw draw quantiles and no "
                      "confidence is given (run `phenoseq calibrate`)", stacklevel=3)  # fmt: skip
        return
    missing = [lv for lv in levels if lv not in cal.levels]
    if missing:
        raise InputError(
            f"levels {missing} were not calibrated (calibrated: {cal.levels}).",
            "re-run `phenoseq calibrate --levels ...` or use those levels",
        )
    if (n_draws, n_cells) != (cal.n_draws, cal.n_cells):
        warnings.warn(f"calibrated with {cal.n_draws} draws x {cal.n_cells} cells, summarising "
                      f"with {n_draws} x {n_cells}: the intervals' coverage is only guaranteed "
                      "with the calibration's settings", stacklevel=3)  # fmt: skip


def summarize(
    model: PhenoSeqModel,
    morphology: ad.AnnData,
    calibration: Calibration | None = None,
    levels: tuple[float, ...] = LEVELS,
    n_draws: int = 20,
    n_cells: int = 50,
    threshold: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    **generate_kw,
) -> ad.AnnData:
    """The per-group summary AnnData (one row per group, genes as variables).

    Layers ``mean``, ``lower_<level>``, ``upper_<level>`` for the pseudo-bulk and ``delta_*``
    for the difference to the control of the same batch (groups whose control is present);
    obs ``confidence``, ``ood_score``, ``ood_flag``, ``mean_width_<level>``. With a
    ``calibration`` the intervals are conformal (``q * (sd + eps)`` around the draws' mean),
    without one they are the raw quantiles of the draws.
    """
    cal = calibration
    check_summary_settings(cal, levels, n_draws, n_cells)
    d = draw(model, morphology, n_draws, n_cells, seed, progress, **generate_kw)
    centre, spread = d.centre, d.spread
    layers = {"mean": centre}

    def q(kind: str, lv: float) -> float | np.ndarray | None:
        return None if cal is None else cal.multipliers(kind, lv)

    def eps_of(stored: float | None, sd: np.ndarray) -> float:  # the calibration's own eps
        return stored if cal is not None and stored is not None else _eps(sd)

    eps_bulk = eps_of(cal.eps if cal is not None else None, spread)
    for lv in levels:
        layers[f"lower_{lv:g}"], layers[f"upper_{lv:g}"] = _interval(
            d.values, lv, q("bulk", lv), eps_bulk
        )
    obs = d.obs.copy()
    obs.index = pd.Index(d.groups, name=None)
    controls = _controls(model, d.obs.reset_index(), d.groups)
    have, dd = _deltas(d, controls)
    if have:
        rows = np.array([d.groups.index(g) for g in have])
        full = lambda: np.full(centre.shape, np.nan, np.float32)  # noqa: E731
        layers["delta_mean"] = full()
        layers["delta_mean"][rows] = dd.mean(axis=1)
        eps_d = eps_of(cal.eps_delta if cal is not None else None, dd.std(axis=1, ddof=1))
        for lv in levels:
            lo_l, hi_l = full(), full()
            lo_l[rows], hi_l[rows] = _interval(dd, lv, q("delta", lv), eps_d)
            layers[f"delta_lower_{lv:g}"], layers[f"delta_upper_{lv:g}"] = lo_l, hi_l
        obs["control_group"] = [controls.get(g, "") for g in d.groups]
    for lv in levels:
        obs[f"mean_width_{lv:g}"] = (layers[f"upper_{lv:g}"] - layers[f"lower_{lv:g}"]).mean(1)
    if cal is not None:
        score = ood_score(ood_distances(model, morphology, d.groups, seed), cal.ood_scale)
        obs["ood_score"] = score
        obs["confidence"] = confidence(score, cal.ood_reference)
        obs["ood_flag"] = obs["confidence"] < threshold
    out = ad.AnnData(X=centre.astype(np.float32), obs=obs,
                     var=pd.DataFrame(index=pd.Index(model.registry.genes)))  # fmt: skip
    for k, v in layers.items():
        out.layers[k] = np.asarray(v, np.float32)
    out.uns[K.UNS] = {
        "levels": list(levels), "n_draws": n_draws, "n_cells_per_draw": n_cells,
        "intervals": "conformal" if cal is not None else "raw draw quantiles (uncalibrated)",
        "ood_threshold": threshold, "seed": seed,
    }  # fmt: skip
    return out


def coverage(summary: ad.AnnData, truth: pd.DataFrame, prefix: str = "") -> dict:
    """Empirical coverage and mean width per level over (group, gene) pairs of the groups in
    both ``summary`` and ``truth`` (groups x genes real values: pseudo-bulks or deltas)."""
    groups = [g for g in summary.obs_names if g in truth.index]
    rows = [summary.obs_names.get_loc(g) for g in groups]
    y = truth.loc[groups, list(summary.var_names)].to_numpy()
    out = {}
    for lv in summary.uns[K.UNS]["levels"]:
        lo = summary.layers[f"{prefix}lower_{lv:g}"][rows]
        hi = summary.layers[f"{prefix}upper_{lv:g}"][rows]
        ok = np.isfinite(lo).all(axis=1)
        inside = (y[ok] >= lo[ok]) & (y[ok] <= hi[ok])
        out[f"{lv:g}"] = {"coverage": float(inside.mean()) if ok.any() else None,
                          "mean_width": float((hi[ok] - lo[ok]).mean()) if ok.any() else None,
                          "n_groups": int(ok.sum())}  # fmt: skip
    return out


def auroc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney)."""
    from sklearn.metrics import roc_auc_score

    pos, neg = np.asarray(scores_pos, float), np.asarray(scores_neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    truth = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(truth, np.r_[pos, neg]))


def parse_levels(text: str | None) -> tuple[float, ...]:
    """``"0.5,0.8,0.9,0.95"`` -> levels, each in (0, 1)."""
    if not text:
        return LEVELS
    try:
        levels = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise InputError(f"--levels '{text}' is not a list of numbers.",
                         "write e.g. 0.5,0.8,0.9,0.95") from exc  # fmt: skip
    if not levels or not all(0 < lv < 1 for lv in levels):
        raise InputError(f"--levels {levels} must lie strictly between 0 and 1.",
                         "write e.g. 0.5,0.8,0.9,0.95")  # fmt: skip
    return levels


def calibrate_model(
    model_dir: str | Path,
    morphology: str | Path | None = None,
    expression: str | Path | None = None,
    levels: tuple[float, ...] = LEVELS,
    n_draws: int = 20,
    n_cells: int = 50,
    seed: int = 0,
    progress: bool = True,
) -> Calibration:
    """``phenoseq calibrate``: calibrate a model directory and store ``calibration.json`` in it.

    Default data: the model's recorded training inputs, restricted to the split's ``calib``
    groups (held out of training); or explicit calibration files.
    """
    from .data import read_expression, read_morphology
    from .model import PhenoSeqModel

    model = PhenoSeqModel.load(model_dir)
    reg = model.registry
    if morphology is None and expression is None:
        from .evaluate.run import load_training

        paired = load_training(model)
        calib = {g for g, r in zip(reg.group_names, reg.group_roles, strict=True) if r == "calib"}
        if not calib:
            raise InputError("the model's split has no calib groups.",
                             "train with --calib REPLICATES, or pass --morphology/--expression "
                             "of calibration groups", model_dir)  # fmt: skip
        m = paired.morphology[paired.morphology.obs[K.GROUP].isin(calib)].copy()
        e = paired.expression  # backed stays on disk: the calib pseudo-bulks are read in blocks
        if not e.isbacked:
            e = e[e.obs[K.GROUP].isin(calib)].copy()
    elif morphology is None or expression is None:
        raise InputError("pass both --morphology and --expression (or neither).",
                         "give the calibration groups' two modalities")  # fmt: skip
    else:
        m = read_morphology(morphology, obsm_key=reg.inputs.get("morphology_obsm"))
        e = read_expression(expression, kind=reg.kind)
    cal = calibrate(model, m, e, levels, n_draws, n_cells, seed, progress)
    cal.save(model_dir)
    return cal


def suggest(summary: ad.AnnData, budget: int, level: float | None = None) -> pd.DataFrame:
    """Which groups to sequence: the ``budget`` groups where a measurement teaches most.

    Priority = mean of two percentiles over the groups: novelty (``1 - confidence``) and
    uncertainty (mean interval width at ``level``, default the widest calibrated level below 1
    that is 0.9 when present); flagged groups (``ood_flag``) come first. Without a confidence
    (uncalibrated summary) only the width counts. Returns the ranked table (``rank``, group,
    ``priority``, ``confidence``, ``ood_flag``, ``mean_width``, ``reason``).
    """
    if budget < 1:
        raise InputError(f"--budget must be at least 1 (got {budget}).", "pass a positive number")
    levels = [float(v) for v in np.ravel(summary.uns.get(K.UNS, {}).get("levels", []))]
    if not levels:
        raise InputError("is not a `phenoseq generate --summary` output (no levels).",
                         "pass the --summary file")  # fmt: skip
    level = level if level is not None else (0.9 if 0.9 in levels else max(levels))
    col = f"mean_width_{level:g}"
    if col not in summary.obs:
        raise InputError(f"has no {col} column.", f"use one of the levels {levels}")
    obs = summary.obs
    width = obs[col].to_numpy(float)
    pct = lambda v: pd.Series(v).rank(pct=True).to_numpy()  # noqa: E731
    table = pd.DataFrame({"group": summary.obs_names, "mean_width": width})
    if "confidence" in obs:
        conf = obs["confidence"].to_numpy(float)
        flag = obs["ood_flag"].to_numpy(bool)
        table["confidence"], table["ood_flag"] = conf, flag
        table["priority"] = 0.5 * (pct(-conf) + pct(width)) + flag.astype(float)
    else:
        table["confidence"], table["ood_flag"] = np.nan, False
        table["priority"] = pct(width)
    wide = width >= np.median(width)
    table["reason"] = np.where(
        table["ood_flag"], "unlike the training data (OOD)",
        np.where(table["confidence"] < 0.25, "low confidence",
                 np.where(wide, "wide intervals", "lower priority")),
    )  # fmt: skip
    table = table.sort_values("priority", ascending=False, kind="stable").head(budget)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    extra = [c for c in obs.columns if c.startswith("Metadata_") or c in (K.TREATMENT,)]
    return table.join(obs[extra], on="group").reset_index(drop=True)


def score_summary(model: PhenoSeqModel, summary: ad.AnnData, expression: ad.AnnData) -> dict:
    """Coverage and width per level of the pseudo-bulk and delta intervals against real
    held-out cells, separately for groups of seen and unseen treatments, and the OOD AUROC
    (unseen vs seen groups by ``ood_score``): the ``uncertainty`` section of ``metrics.json``."""
    real = real_pseudobulk(model, expression)
    groups = [g for g in summary.obs_names if g in real.index]
    if not groups:
        raise InputError(
            "the summary shares no group with the held-out expression.",
            "pass the --summary generated from the held-out morphology",
        )
    novel = set(novel_groups(model, groups))
    ctrl = summary.obs["control_group"] if "control_group" in summary.obs else None
    out: dict = {"levels": [float(v) for v in np.ravel(summary.uns[K.UNS]["levels"])],
                 "intervals": summary.uns[K.UNS].get("intervals"), "coverage": {}}  # fmt: skip
    for subset, names in (("seen", [g for g in groups if g not in novel]),
                          ("unseen", [g for g in groups if g in novel])):  # fmt: skip
        if not names:
            continue
        out["coverage"][f"pseudobulk/{subset}"] = coverage(summary[names], real)
        if ctrl is not None:
            have = [g for g in names if ctrl[g] and ctrl[g] != g and ctrl[g] in real.index]
            if have:
                delta = pd.DataFrame(real.loc[have].to_numpy()
                                     - real.loc[ctrl[have].to_numpy()].to_numpy(),
                                     index=have, columns=real.columns)  # fmt: skip
                out["coverage"][f"delta/{subset}"] = coverage(summary[have], delta, "delta_")
    if "ood_score" in summary.obs:
        s = summary.obs.loc[groups, "ood_score"]
        out["ood_auroc"] = auroc(s[[g in novel for g in groups]].to_numpy(),
                                 s[[g not in novel for g in groups]].to_numpy())  # fmt: skip
        flag = summary.obs.loc[groups, "ood_flag"].astype(bool)
        out["flagged"] = {"seen": int(flag[[g not in novel for g in groups]].sum()),
                          "unseen": int(flag[[g in novel for g in groups]].sum())}  # fmt: skip
    return out
