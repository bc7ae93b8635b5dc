"""A population of profiles (cells) with their pairing groups and treatment labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Cells:
    """One population: rows ``x`` with their pairing ``groups`` and treatment ``labels`` (str)."""

    x: np.ndarray
    groups: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.groups = np.asarray(self.groups).astype(str)
        self.labels = np.asarray(self.labels).astype(str)
        if not len(self.x) == len(self.groups) == len(self.labels):
            raise ValueError("x, groups and labels must have one entry per row")

    def take(self, mask: np.ndarray) -> Cells:
        return Cells(self.x[mask], self.groups[mask], self.labels[mask])

    def per_group(self, n: int, rng: np.random.Generator) -> Cells:
        """At most ``n`` random rows of every group (kept in their original order)."""
        keep = [rng.permutation(np.flatnonzero(self.groups == g))[:n]
                for g in np.unique(self.groups)]  # fmt: skip
        return self.take(np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=int))

    def group(self, g: str) -> np.ndarray:
        return self.x[self.groups == g]

    def label_of(self) -> pd.Series:
        """Group -> label."""
        return pd.Series(self.labels, index=self.groups).groupby(level=0).first()

    def means(self) -> pd.DataFrame:
        """Per-group mean rows (index: group)."""
        return pd.DataFrame(self.x).groupby(self.groups).mean()


@dataclass
class EvaluationData:
    """Training and held-out populations in the evaluation views.

    ``expr_*`` rows are log1p expression of the model's genes, ``morph_*`` rows standardised
    morphology features; ``control`` is the control label (None: no delta/DEG metrics).
    """

    expr_train: Cells
    morph_train: Cells
    expr_test: Cells
    morph_test: Cells
    genes: list[str]
    control: str | None = None

    @property
    def seen_labels(self) -> set[str]:
        return set(self.expr_train.labels)

    def test_labels(self) -> pd.Series:
        """Held-out group -> label, for the groups with real expression."""
        return self.expr_test.label_of()
