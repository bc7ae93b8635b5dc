"""Features without pixels: a quadratic ridge map from morphology parameters to crop features.

For ``--features-only`` runs (a million cells cannot be rendered in minutes), the simulator
renders a calibration set of cells, measures them, and fits ``features ~ quadratic(parameters,
acquisition)`` plus Gaussian residuals with the measured residual covariance. Cells drawn this
way share the rendered features' names, means, correlations and batch effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import GroundTruthModel


def surrogate_inputs(params: np.ndarray, model: GroundTruthModel, r: int) -> np.ndarray:
    """``(n, P + 11)``: morphology parameters plus replicate ``r``'s channel gains, backgrounds
    and blur (the acquisition effects the features see, its round's included)."""
    gain, background, sigma = model.camera(r)
    acq = np.concatenate([gain, background, [sigma]])
    return np.concatenate([params, np.broadcast_to(acq, (len(params), len(acq)))], axis=1)


def _expand(z: np.ndarray) -> np.ndarray:
    """``[1, z, z_i z_j for i <= j]``."""
    i, j = np.triu_indices(z.shape[1])
    return np.concatenate([np.ones((len(z), 1)), z, z[:, i] * z[:, j]], axis=1)


@dataclass
class Surrogate:
    """Fitted map; :meth:`predict` draws features for new parameter rows."""

    center: np.ndarray  # (q,)
    scale: np.ndarray  # (q,)
    coef: np.ndarray  # (1 + q + q(q+1)/2, F)
    chol: np.ndarray  # (F, F) residual covariance factor
    r2: np.ndarray  # (F,) in-sample R^2 per feature

    def mean(self, inputs: np.ndarray) -> np.ndarray:
        """Expected features ``(n, F)`` of ``inputs`` ``(n, q)``."""
        return _expand((inputs - self.center) / self.scale) @ self.coef

    def predict(self, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Features ``(n, F)`` float32: the expected value plus correlated residual noise."""
        noise = rng.standard_normal((len(inputs), self.chol.shape[0])) @ self.chol.T
        return (self.mean(inputs) + noise).astype(np.float32)


def fit_surrogate(inputs: np.ndarray, features: np.ndarray, ridge: float = 1.0) -> Surrogate:
    """Ridge regression of ``features`` ``(n, F)`` on quadratic terms of ``inputs`` ``(n, q)``."""
    center, scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-9
    design = _expand((inputs - center) / scale)
    penalty = ridge * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(design.T @ design + penalty, design.T @ features.astype(np.float64))
    resid = features - design @ coef
    cov = np.cov(resid, rowvar=False) + 1e-10 * np.eye(features.shape[1])
    r2 = 1 - resid.var(axis=0) / np.maximum(features.var(axis=0), 1e-12)
    return Surrogate(center, scale, coef, np.linalg.cholesky(cov), r2)
