"""Wells as the model sees them: per registered group, the mean of its cells' normalised
morphology (and how many cells), the pooled within-well cell covariance, and the condition
vector the diffusion receives — the standardised whitened well mean, and (with the mean head)
the latent mean a cell is generated around."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.transforms import GroupSums


@dataclass
class WellStats:
    """``means`` ``"G F"`` (NaN rows: groups without morphology), ``n_cells`` ``"G"``, and the
    pooled within-well covariance ``"F F"`` of the training wells' cells."""

    means: np.ndarray
    n_cells: np.ndarray
    cell_cov: np.ndarray


def well_stats(x: np.ndarray, groups: np.ndarray, n_groups: int, train: list[int]) -> WellStats:
    """Well statistics of normalised morphology ``x`` ``"n F"`` (``groups``: registered group
    index of every row)."""
    sums = GroupSums(n_groups, x.shape[1])
    sums.add(x, groups)
    means = sums.means()
    keep = np.isin(groups, train)
    r = x[keep] - means[groups[keep]]
    dof = max(int(keep.sum()) - len(train), 1)
    return WellStats(means.astype(np.float64), sums.counts, (r.T @ r / dof).astype(np.float64))


def well_mean(cells: np.ndarray, rng: np.random.Generator, cap: int) -> np.ndarray:
    """The mean of a well's cells ``"n F"`` (of ``cap`` random ones for a very large well)."""
    if len(cells) > cap:
        cells = cells[rng.choice(len(cells), size=cap, replace=False)]
    return cells.mean(axis=0)


@dataclass
class Conditioner:
    """Well means -> the diffusion's condition vectors: ``(m W - center) / scale`` (whitened,
    standardised over the training wells), followed by the latent mean when ``with_mean``."""

    W: np.ndarray  # "F F'"
    center: np.ndarray  # "F'"
    scale: np.ndarray  # "F'"
    with_mean: bool

    @classmethod
    def fit(cls, W: np.ndarray, train_means: np.ndarray, with_mean: bool) -> Conditioner:
        z = train_means @ W
        return cls(W, z.mean(axis=0), np.maximum(z.std(axis=0), 1e-6), with_mean)

    def represent(self, means: np.ndarray) -> np.ndarray:
        """Standardised whitened well means ``"n F'"`` (the condition embedding of a well)."""
        return ((means @ self.W - self.center) / self.scale).astype(np.float32)

    def vector(self, means: np.ndarray, latent_means: np.ndarray | None) -> np.ndarray:
        """Condition vectors ``"n F' (+k)"`` of wells and the latent means they are drawn at."""
        z = self.represent(means)
        return np.hstack([z, latent_means.astype(np.float32)]) if self.with_mean else z

    def state(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "center": self.center, "scale": self.scale,
                "with_mean": np.asarray([float(self.with_mean)])}  # fmt: skip

    @classmethod
    def from_state(cls, s: dict[str, np.ndarray]) -> Conditioner:
        return cls(s["W"], s["center"], s["scale"], bool(s["with_mean"][0]))
