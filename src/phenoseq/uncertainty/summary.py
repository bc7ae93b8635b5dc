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
from .ood import confidence, ood_distances, ood_score


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


def _intervals(d: Draws, cal: Calibration | None, kind: str, levels, eps: float, values):
    """``{lower_<lv>: ..., upper_<lv>: ...}`` of draws ``values`` at every level."""
    out = {}
    for lv in levels:
        q = None if cal is None else cal.multipliers(kind, lv)
        out[f"lower_{lv:g}"], out[f"upper_{lv:g}"] = interval(values, lv, q, eps)
    return out


def _delta_layers(model, d: Draws, cal: Calibration | None, levels) -> tuple[dict, list[str]]:
    """The ``delta_*`` layers (NaN for groups without a control) and each group's control."""
    ctrl = controls(model, d.obs.reset_index(), d.groups)
    have, dd = deltas(d, ctrl)
    if not have:
        return {}, []
    rows = np.array(d.index(have))
    stored = cal.eps_delta if cal is not None else None
    eps = stored if stored is not None else spread_floor(dd.std(axis=1, ddof=1))
    layers = {"mean": dd.mean(axis=1)} | _intervals(d, cal, "delta", levels, eps, dd)
    out = {}
    for name, v in layers.items():
        full = np.full(d.centre.shape, np.nan, np.float32)
        full[rows] = v
        out[f"delta_{name}"] = full
    return out, [ctrl.get(g, "") for g in d.groups]


def summarize(
    model: PhenoSeqModel,
    morphology: ad.AnnData | Conditions,
    calibration: Calibration | None = None,
    config: UncertaintyConfig | None = None,
    sample: SampleConfig | None = None,
    progress: bool = True,
) -> ad.AnnData:
    """The per-group summary AnnData (one row per group, genes as variables).

    Layers ``mean``, ``lower_<level>``, ``upper_<level>`` for the pseudo-bulk and ``delta_*``
    for the difference to the control of the same batch (groups whose control is present);
    obs ``confidence``, ``ood_score``, ``ood_flag``, ``mean_width_<level>``. With a
    ``calibration`` the intervals are conformal (``q * (sd + eps)`` around the draws' mean),
    without one they are the raw quantiles of the draws.
    """
    cal, cfg, sample = calibration, config or UncertaintyConfig(), sample or SampleConfig()
    check_summary_settings(cal, cfg, sample)
    cond = model.prepare(morphology)
    d = draw(model, cond, cfg, sample, progress)
    stored = cal.eps if cal is not None else None
    eps = stored if stored is not None else spread_floor(d.spread)
    layers = {"mean": d.centre} | _intervals(d, cal, "bulk", cfg.levels, eps, d.values)
    obs = d.obs.copy()
    obs.index = pd.Index(d.groups, name=None)
    delta, control_groups = _delta_layers(model, d, cal, cfg.levels)
    layers |= delta
    if control_groups:
        obs["control_group"] = control_groups
    for lv in cfg.levels:
        obs[f"mean_width_{lv:g}"] = (layers[f"upper_{lv:g}"] - layers[f"lower_{lv:g}"]).mean(1)
    if cal is not None:
        score = ood_score(ood_distances(model, cond, d.groups, sample.seed), cal.ood_scale)
        obs["ood_score"] = score
        obs["confidence"] = confidence(score, cal.ood_reference)
        obs["ood_flag"] = obs["confidence"] < cfg.ood_threshold
    out = ad.AnnData(X=d.centre.astype(np.float32), obs=obs,
                     var=model.registry.var_frame())  # fmt: skip
    for k, v in layers.items():
        out.layers[k] = np.asarray(v, np.float32)
    out.uns[K.UNS] = {
        "levels": list(cfg.levels), "n_draws": cfg.n_draws,
        "n_cells_per_draw": cfg.n_cells_per_draw,
        "intervals": "conformal" if cal is not None else "raw draw quantiles (uncalibrated)",
        "ood_threshold": cfg.ood_threshold, "seed": sample.seed,
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
