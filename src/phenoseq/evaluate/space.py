"""The fixed expression space every distribution metric is computed in.

DESIGN.md §4: counts are normalised to ``target_sum`` per cell and log1p-transformed, then
projected on principal components fitted once on the *training* expression. Real cells,
generated cells, baselines and the split-half ceiling all go through the same fitted space, so
their distances are comparable; the space is saved with the model (:meth:`ExpressionSpace.to_dict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA

from ..data.arrays import as_matrix
from ..errors import InputError

_KIND = "phenoseq.ExpressionSpace"


@dataclass(frozen=True, eq=False)
class ExpressionSpace:
    """A PCA of log1p expression, fitted on the training cells (mean-centred, not scaled).

    Build it with :meth:`fit`; project with :meth:`transform`; save with :meth:`to_dict` and
    restore with :meth:`from_dict` (plain lists, JSON-serialisable).

    Attributes
    ----------
    mean
        ``"n_genes"`` training mean subtracted before projecting.
    components
        ``"n_pcs n_genes"`` orthonormal principal axes (sklearn's sign convention).
    explained_variance_ratio
        ``"n_pcs"`` share of the training variance each axis explains.
    genes
        Gene names the space was fitted on, if given; :meth:`transform` checks them.
    seed
        Seed of the (randomized) SVD, for the record.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    genes: tuple[str, ...] | None = None
    seed: int = 0

    @property
    def n_pcs(self) -> int:
        return self.components.shape[0]

    @property
    def n_genes(self) -> int:
        return self.components.shape[1]

    @classmethod
    def fit(
        cls,
        train_log1p: np.ndarray | sp.spmatrix,
        n_pcs: int = 30,
        seed: int = 0,
        genes: Sequence[str] | None = None,
    ) -> ExpressionSpace:
        """Fit the space on ``"n_cells n_genes"`` log1p training expression.

        sklearn's ``PCA(svd_solver="auto", random_state=seed)``: exact SVD for small inputs,
        a seeded randomized SVD for large ones; either way the same input and seed give the
        same space (component signs fixed by sklearn's ``svd_flip``).
        """
        x = as_matrix(train_log1p, "train_log1p", min_rows=2)
        if not 1 <= n_pcs <= min(x.shape):
            raise InputError(
                f"n_pcs={n_pcs} but the training expression is {x.shape[0]} x {x.shape[1]}.",
                f"pass 1 <= n_pcs <= {min(x.shape)}",
            )
        if genes is not None and len(genes) != x.shape[1]:
            raise InputError(
                f"{len(genes)} gene names for {x.shape[1]} columns.", "pass one name per column"
            )
        pca = PCA(n_components=n_pcs, svd_solver="auto", random_state=seed).fit(x)
        return cls(
            mean=pca.mean_,
            components=pca.components_,
            explained_variance_ratio=pca.explained_variance_ratio_,
            genes=None if genes is None else tuple(str(g) for g in genes),
            seed=seed,
        )

    def transform(
        self, log1p: np.ndarray | sp.spmatrix, genes: Sequence[str] | None = None
    ) -> np.ndarray:
        """Project ``"n_cells n_genes"`` log1p expression to ``"n_cells n_pcs"`` (float64).

        If both the space and the call name their genes, they must be identical and in order.
        """
        x = as_matrix(log1p, "log1p", min_rows=0)
        if x.shape[1] != self.n_genes:
            raise InputError(
                f"expression has {x.shape[1]} genes; the space was fitted on {self.n_genes}.",
                "subset/reorder the genes to those of the training data",
            )
        if genes is not None and self.genes is not None and tuple(map(str, genes)) != self.genes:
            raise InputError(
                "the genes differ from (or are ordered differently than) the fitted space's.",
                "reorder with adata[:, space.genes] before transforming",
            )
        return (x - self.mean) @ self.components.T

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable contents (plain lists and numbers)."""
        return {
            "kind": _KIND,
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
            "genes": None if self.genes is None else list(self.genes),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExpressionSpace:
        """The inverse of :meth:`to_dict`."""
        missing = {"mean", "components", "explained_variance_ratio"} - set(d)
        if missing or d.get("kind", _KIND) != _KIND:
            raise InputError(
                f"not a saved ExpressionSpace (missing {sorted(missing)}).",
                "pass the dict written by ExpressionSpace.to_dict()",
            )
        genes = d.get("genes")
        return cls(
            mean=np.asarray(d["mean"], dtype=np.float64),
            components=np.asarray(d["components"], dtype=np.float64).reshape(
                len(d["components"]), -1
            ),
            explained_variance_ratio=np.asarray(d["explained_variance_ratio"], dtype=np.float64),
            genes=None if genes is None else tuple(genes),
            seed=int(d.get("seed", 0)),
        )


def fit_space(train_log1p: np.ndarray, n_pcs: int = 30, seed: int = 0) -> ExpressionSpace:
    """The evaluation PCA, fitted on training log1p expression (``n_pcs`` capped by its size)."""
    return ExpressionSpace.fit(train_log1p, min(n_pcs, *train_log1p.shape), seed)
