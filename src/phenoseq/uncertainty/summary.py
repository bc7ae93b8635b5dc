"""The per-group summary of generated expression: mean, intervals (of the pseudo-bulk and of the
delta vs the control of the same batch), confidence and OOD flag — one row per group, genes as
variables — and ``generate --summary``, which writes it beside the generated cells."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .. import _keys as K
from ..config import SampleConfig, UncertaintyConfig, to_dict
from ..errors import InputError
from ..io import write_h5ad
from ..model import Conditions, PhenoSeqModel
from ..train import resolve_device
from .calibration import Calibration
from .conformal import interval, spread_floor
from .draws import Draws, controls, deltas, draw
from .ood import confidence, novel_groups, ood_distances, ood_score
from .spread import error_scale, head_variance


def check_summary_settings(
    calibration: Calibration | None, config: UncertaintyConfig, sample: SampleConfig
) -> None:
    """Refuse levels the calibration does not have; warn when it is missing or was made with
    other draw or sampler settings (its multipliers assume the spread of those draws)."""
    cal = calibration
    if cal is None:
        warnings.warn("the model is not calibrated: intervals are raw draw quantiles and no "
                      "confidence is given (run `phenoseq calibrate`)", stacklevel=3)  # fmt: skip
        return
    missing = [lv for lv in config.levels if lv not in cal.levels]
    if missing:
        raise InputError(
            f"levels {missing} were not calibrated (calibrated: {cal.levels}).",
            "re-run `phenoseq calibrate --levels ...` or use those levels",
        )
    if (config.n_draws, config.n_cells_per_draw) != (cal.n_draws, cal.n_cells):
        warnings.warn(f"calibrated with {cal.n_draws} draws x {cal.n_cells} cells, summarising "
                      f"with {config.n_draws} x {config.n_cells_per_draw}: the intervals' "
                      "coverage is only guaranteed with the calibration's settings",
                      stacklevel=3)  # fmt: skip
    keys = ("sampler", "n_steps", "guidance", "set_size")
    now = to_dict(sample)
    changed = [k for k in keys if cal.sample is not None and cal.sample.get(k) != now[k]]
    if changed:
        warnings.warn(f"calibrated with other sampler settings ({', '.join(changed)}): the "
                      "intervals' coverage is only guaranteed with the calibration's settings",
                      stacklevel=3)  # fmt: skip


def _q(cal: Calibration | None, kind: str, level: float, novel: np.ndarray, n_genes: int):
    """The multipliers ``"groups genes"`` of every group, the novel groups' own where the
    calibration has them; None without a calibration of ``kind`` (raw quantiles then)."""
    seen = None if cal is None else cal.multipliers(kind, level)
    if seen is None:
        return None
    new = cal.multipliers(kind, level, novel=True)
    full = lambda q: np.broadcast_to(np.asarray(q, float), (n_genes,))[None]  # noqa: E731
    return np.where(novel[:, None], full(new), full(seen))


def _intervals(cal: Calibration | None, kind: str, levels, scale, values, novel) -> dict:
    """``{lower_<lv>: ..., upper_<lv>: ...}`` of draws ``values`` at every level."""
    out = {}
    for lv in levels:
        lo, hi = interval(values, lv, _q(cal, kind, lv, novel, values.shape[-1]), scale)
        out[f"lower_{lv:g}"], out[f"upper_{lv:g}"] = lo, hi
    return out


@dataclass
class _Parts:
    """What the summary is built from: the draws, each group's error scale and novelty."""

    d: Draws
    scale: np.ndarray
    head_var: np.ndarray
    novel: np.ndarray


def _delta_layers(model, p: _Parts, cal: Calibration | None, levels) -> tuple[dict, list[str]]:
    """The ``delta_*`` layers (NaN for groups without a control) and each group's control."""
    d = p.d
    ctrl = controls(model, d.obs.reset_index(), d.groups)
    have, dd = deltas(d, ctrl)
    if not have:
        return {}, []
    rows, crows = np.array(d.index(have)), np.array(d.index([ctrl[g] for g in have]))
    stored = cal.eps_delta if cal is not None else None
    sd = dd.std(axis=1, ddof=1)
    eps = stored if stored is not None else spread_floor(sd)
    scale = _scale(cal, sd, eps, p.head_var[rows] + p.head_var[crows])
    layers = {"mean": dd.mean(axis=1), "scale": scale} | _intervals(
        cal, "delta", levels, scale, dd, p.novel[rows])  # fmt: skip
    out = {}
    for name, v in layers.items():
        full = np.full(d.centre.shape, np.nan, np.float32)
        full[rows] = v
        out[f"delta_{name}"] = full
    return out, [ctrl.get(g, "") for g in d.groups]


def _scale(cal: Calibration | None, sd: np.ndarray, eps: float, head_var: np.ndarray):
    """The scores' scale: with the head's variance for a calibration that used it (and
    uncalibrated), else the draws' SD + eps as an older calibration had it."""
    use_head = cal is None or cal.head_scale
    return error_scale(sd, eps, head_var if use_head else np.zeros_like(sd))


def _confidence(model, cond, p: _Parts, cal: Calibration, cfg, seed: int) -> dict:
    """obs columns of a calibrated summary: the OOD distance score, the mean error scale
    (``uncertainty``), the confidence (its conformal p-value among seen calibration groups) and
    the flag."""
    dist = ood_score(ood_distances(model, cond, p.d.groups, seed), cal.ood_scale)
    u = p.scale.mean(axis=1)
    conf = (confidence(u, cal.uncertainty_reference) if cal.uncertainty_reference
            else confidence(dist, cal.ood_reference))  # fmt: skip
    return {"ood_score": dist, "uncertainty": u, "confidence": conf,
            "ood_flag": conf < cfg.ood_threshold}  # fmt: skip


def summarize(
    model: PhenoSeqModel,
    morphology: ad.AnnData | Conditions,
    calibration: Calibration | None = None,
    config: UncertaintyConfig | None = None,
    sample: SampleConfig | None = None,
    progress: bool = True,
) -> ad.AnnData:
    """The per-group summary AnnData (one row per group, genes as variables).

    Layers ``mean``, ``scale`` (the per-gene error scale), ``lower_<level>``, ``upper_<level>``
    for the pseudo-bulk and ``delta_*`` for the difference to the control of the same batch
    (groups whose control is present); obs ``seen_treatment``, ``confidence``, ``uncertainty``,
    ``ood_score``, ``ood_flag``, ``mean_width_<level>``. With a ``calibration`` the intervals
    are conformal (``q * scale`` around the draws' mean; novel groups with their own ``q`` where
    calibrated), without one they are the raw quantiles of the draws.
    """
    cal, cfg, sample = calibration, config or UncertaintyConfig(), sample or SampleConfig()
    check_summary_settings(cal, cfg, sample)
    cond = model.prepare(morphology)
    d = draw(model, cond, cfg, sample, progress)
    stored = cal.eps if cal is not None else None
    eps = stored if stored is not None else spread_floor(d.spread)
    head_var = head_variance(model, cond, d.groups, sample.seed)
    novel = np.isin(d.groups, novel_groups(model, d.groups))
    p = _Parts(d, _scale(cal, d.spread, eps, head_var), head_var, novel)
    layers = {"mean": d.centre, "scale": p.scale} | _intervals(cal, "bulk", cfg.levels, p.scale,
                                                               d.values, novel)  # fmt: skip
    obs = d.obs.copy()
    obs.index = pd.Index(d.groups, name=None)
    obs["seen_treatment"] = ~novel
    delta, control_groups = _delta_layers(model, p, cal, cfg.levels)
    layers |= delta
    if control_groups:
        obs["control_group"] = control_groups
    for lv in cfg.levels:
        obs[f"mean_width_{lv:g}"] = (layers[f"upper_{lv:g}"] - layers[f"lower_{lv:g}"]).mean(1)
    if cal is not None:
        for k, v in _confidence(model, cond, p, cal, cfg, sample.seed).items():
            obs[k] = v
    out = ad.AnnData(X=d.centre.astype(np.float32), obs=obs, var=model.registry.var_frame())
    for k, v in layers.items():
        out.layers[k] = np.asarray(v, np.float32)
    out.uns[K.UNS] = {
        "levels": list(cfg.levels), "n_draws": cfg.n_draws,
        "n_cells_per_draw": cfg.n_cells_per_draw,
        "intervals": "conformal" if cal is not None else "raw draw quantiles (uncalibrated)",
        "guarantee": (cal.guarantee or {}) if cal is not None else {},
        "ood_threshold": cfg.ood_threshold, "seed": sample.seed,
        "label_key": model.registry.label_key, "control": model.registry.control,
        "settings": {"sample": to_dict(sample), "uncertainty": to_dict(cfg)},
    }  # fmt: skip
    return out


@dataclass
class GenerateOutput:
    """What ``phenoseq generate`` wrote: the cells' file, their count, and the summary."""

    path: Path
    n_groups: int
    n_cells: int
    n_genes: int
    summary: ad.AnnData | None = None
    summary_path: Path | None = None

    @property
    def flagged(self) -> list[str]:
        """Groups unlike the training data (empty without a calibrated summary)."""
        s = self.summary
        if s is None or "ood_flag" not in s.obs:
            return []
        return s.obs_names[s.obs["ood_flag"].to_numpy(bool)].tolist()


def generate_outputs(
    model: PhenoSeqModel | str | Path,
    morphology: ad.AnnData,
    out: str | Path,
    sample: SampleConfig | None = None,
    summary: str | Path | None = None,
    config: UncertaintyConfig | None = None,
    device: str = "auto",
    progress: bool = True,
) -> GenerateOutput:
    """``phenoseq generate``: cells for every group of ``morphology`` into ``out`` and, with
    ``summary``, the per-group summary (calibrated when the model directory holds a
    calibration). The morphology is normalised and grouped once for both; the summary's
    settings are checked before anything is written."""
    from_dir = not isinstance(model, PhenoSeqModel)
    m = PhenoSeqModel.load(model) if from_dir else model
    m.to(resolve_device(device))
    sample = sample or SampleConfig()
    cond = m.prepare(morphology)
    summ = None
    if summary is not None:  # first: its settings are checked before anything is written
        cal = Calibration.load(model) if from_dir else None
        summ = summarize(m, cond, cal, config, sample, progress)
    path = m.generate_to(out, cond, sample, progress=progress,
                         uns={"model": str(model)} if from_dir else None)  # fmt: skip
    if summ is not None:
        write_h5ad(summ, summary)
    return GenerateOutput(
        path,
        len(cond.groups),
        len(cond.groups) * sample.n_cells,
        len(m.registry.genes),
        summ,
        None if summary is None else Path(summary),
    )
