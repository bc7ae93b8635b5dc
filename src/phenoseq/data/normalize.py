"""Per-batch normalisation of morphology features against the batch's control cells.

Cell Painting features shift from plate to plate (stain, focus, illumination); the standard
remedy (pycytominer ``normalize(method="standardize", samples="<control>")`` per plate) is to
z-score every feature with the mean and standard deviation of the plate's control (e.g. DMSO)
cells. Treatment effects are then expressed relative to the same batch's controls, so a model
trained on some replicates transfers to a new one.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

MIN_CONTROLS = 2


def control_standardize(
    x: np.ndarray,
    batches: np.ndarray,
    is_control: np.ndarray,
    fallback_std: np.ndarray,
    batch_key: str = "batch",
    control: str = "control",
) -> np.ndarray:
    """``(x - mean_b) / std_b`` with the mean and std of batch ``b``'s control rows.

    Parameters
    ----------
    x
        ``"n_cells n_features"`` raw features.
    batches
        ``"n_cells"`` batch (plate / replicate) of every row.
    is_control
        ``"n_cells"`` True for control cells.
    fallback_std
        ``"n_features"`` scale used where a batch's control std is ~0 (constant feature).
    batch_key, control
        Names for the error message.
    """
    x = np.asarray(x, dtype=np.float32)
    out = np.empty_like(x)
    batches = np.asarray(batches).astype(str)
    for b in np.unique(batches):
        rows = batches == b
        ctrl = x[rows & is_control]
        if len(ctrl) < MIN_CONTROLS:
            raise InputError(
                f"{batch_key} '{b}' has {len(ctrl)} '{control}' cell(s); per-batch "
                f"normalisation needs at least {MIN_CONTROLS}.",
                "include that batch's control wells, or train with --batch-key none",
            )
        std = ctrl.std(axis=0)
        std = np.where(std > 1e-6 * np.maximum(fallback_std, 1e-12), std, fallback_std)
        out[rows] = (x[rows] - ctrl.mean(axis=0)) / std
    return out
