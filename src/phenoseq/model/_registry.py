"""Registration: what the model keeps of its training data (genes, features and their scaler,
groups, split), and the views of new data it derives from it — refusing data whose genes or
features differ (scvi-tools registers once and sizes the model from it; it only warns)."""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import _keys as K
from ..config import ModelConfig
from ..data.normalize import MIN_CONTROLS, control_standardize
from ..data.pairing import PairedData, group_ids, with_expression_columns, with_key_aliases
from ..data.transforms import column_moments, dense, fit_scaler, top_variable_genes
from ..data.validate import require_genes
from ..errors import InputError
from ._kinds import KINDS, Kind


@dataclass
class Registry:
    """What was registered from the training data; everything needed to use the model later."""

    kind: str  # a key of KINDS
    genes: list[str]
    features: list[str]
    feature_mean: np.ndarray  # "n_features"
    feature_std: np.ndarray
    target_mean: np.ndarray  # per-gene standardisation of continuous targets ("n_genes")
    target_std: np.ndarray
    pair_key: list[str]
    label_key: str
    control: str | None
    split: dict
    group_names: list[str]  # every group seen in training data (all roles)
    group_labels: list[str]
    group_roles: list[str]
    inputs: dict
    batch_key: str | None = None  # per-batch control normalisation of morphology (None: global)
    # key columns the expression names differently: canonical (morphology) name -> its name
    expression_columns: dict[str, str] | None = None
    var: dict[str, list[str]] | None = None  # the training var columns of the genes (symbols, ids)

    @property
    def expression_kind(self) -> Kind:
        return KINDS[self.kind]

    def groups_of_role(self, role: str) -> list[str]:
        return [g for g, r in zip(self.group_names, self.group_roles, strict=True) if r == role]

    def normalize_features(self, morph: ad.AnnData) -> np.ndarray:
        """Scaled features ``"n_cells n_features"``, refusing data whose features differ."""
        missing = [f for f in self.features if f not in morph.var_names]
        if missing:
            raise InputError(
                f"morphology lacks {len(missing)} of the model's {len(self.features)} "
                f"features, e.g. {missing[:3]}.",
                "featurize the new data exactly as the training data (same feature set)",
            )
        x = dense(morph[:, self.features].X).astype(np.float32)
        if self.batch_key is None:
            return (x - self.feature_mean) / self.feature_std
        obs = with_key_aliases(morph.obs, (self.batch_key, self.label_key))
        for col in (self.batch_key, self.label_key):
            if col not in obs:
                raise InputError(
                    f"morphology has no '{col}' column; the model normalises features per "
                    f"'{self.batch_key}' against its '{self.control}' cells.",
                    f"add the '{col}' column (e.g. with --platemap)",
                )
        is_control = (obs[self.label_key].astype(str) == self.control).to_numpy()
        return control_standardize(x, obs[self.batch_key].to_numpy(), is_control,
                                   self.feature_std, self.batch_key, str(self.control))  # fmt: skip

    def expression_arrays(self, x: np.ndarray | sp.spmatrix) -> dict[str, np.ndarray]:
        """Model arrays of expression rows ``x`` (columns = the model's genes)."""
        return self.expression_kind.arrays(x, self)

    def var_frame(self) -> pd.DataFrame:
        """The genes as outputs carry them: var_names plus the training ``var`` columns."""
        return pd.DataFrame(self.var or {}, index=pd.Index(self.genes))

    def select_genes(self, expr: ad.AnnData, what: str = "expression") -> ad.AnnData:
        """``expr`` restricted to the model's genes, in order (an error if any is missing)."""
        require_genes(expr.var_names, self.genes, what)
        return expr[:, self.genes]

    def group_ids(self, obs: pd.DataFrame, side: str = "morphology") -> np.ndarray:
        """The pairing group of every row of ``obs`` (pycytominer-prefixed keys accepted)."""
        return group_ids(self.key_obs(obs, side), self.pair_key, side).to_numpy()

    def key_obs(self, obs: pd.DataFrame, side: str = "morphology") -> pd.DataFrame:
        """``obs`` with the key columns under their canonical (morphology-side) names."""
        if side == "expression":
            obs = with_expression_columns(obs, self.expression_columns or {})
        return with_key_aliases(obs, (*self.pair_key, self.label_key))

    def key_specs(self) -> tuple[list[str], str]:
        """The pair key and label key as given to pairing (``MORPH=EXPR`` where they differ)."""
        cols = self.expression_columns or {}
        spec = [f"{k}={cols[k]}" if k in cols else k for k in (*self.pair_key, self.label_key)]
        return spec[:-1], spec[-1]


def register(paired: PairedData, config: ModelConfig, inputs: dict | None = None) -> Registry:
    """Register paired data: kind, genes (optionally the most variable), features and their
    scaler (fitted on training controls when there are, else on all training rows), groups."""
    kind = paired.expression.uns.get(K.UNS, {}).get(K.EXPRESSION_KIND, "counts")
    train_groups = set(paired.split.groups("train")) & set(paired.shared)
    if not train_groups:
        raise InputError("no training group is shared by both modalities.", "check the split")
    genes = _genes(paired, config, KINDS[kind], train_groups)
    morph = paired.morphology
    in_train = morph.obs[K.GROUP].isin(train_groups).to_numpy()
    basis = in_train
    if paired.control is not None:
        ctrl = (morph.obs[K.GROUP].map(paired.groups["is_control"]) == True).to_numpy()  # noqa: E712
        basis = in_train & ctrl if (in_train & ctrl).sum() >= 2 else in_train
    f_mean, f_std = fit_scaler(dense(morph.X)[basis])
    g = paired.groups
    return Registry(
        kind=kind, genes=genes, features=list(morph.var_names),
        feature_mean=f_mean, feature_std=f_std,
        target_mean=np.zeros(len(genes), np.float32),
        target_std=np.ones(len(genes), np.float32),
        pair_key=list(paired.pair_key), label_key=paired.label_key, control=paired.control,
        split=paired.split.to_dict(), group_names=g.index.tolist(),
        group_labels=g["label"].astype(str).tolist(), group_roles=g["role"].tolist(),
        inputs=inputs or {}, batch_key=_batch_key(config.batch_key, paired),
        expression_columns=dict(paired.expression_columns),
        var=_var_columns(paired.expression.var, genes),
    )  # fmt: skip


def _genes(paired: PairedData, config: ModelConfig, kind: Kind, train_groups: set) -> list[str]:
    """The expression genes, or the ``n_variable_genes`` with the largest log1p variance over the
    training cells."""
    genes = list(paired.expression.var_names)
    if config.n_variable_genes is None or config.n_variable_genes >= len(genes):
        return genes
    rows = paired.expression.obs[K.GROUP].isin(train_groups).to_numpy()
    _, var = column_moments(paired.expression, rows, lambda x: kind.raw_arrays(x)["log1p"])
    return [genes[i] for i in top_variable_genes(var, config.n_variable_genes)]


def _var_columns(var: pd.DataFrame, genes: list[str]) -> dict[str, list[str]] | None:
    """The training ``var`` columns of ``genes`` as strings (JSON-able), or None."""
    if not len(var.columns):
        return None
    table = var.loc[genes]
    return {str(c): table[c].astype(str).tolist() for c in table.columns}


def _batch_key(requested: str | None, paired: PairedData) -> str | None:
    """The obs column to normalise morphology per batch by, or None for one global scaler."""
    if requested in (None, "none"):
        return None
    obs = paired.morphology.obs
    auto = requested == "auto"
    key = paired.split.config.replicate_key if auto else requested
    if key not in obs or paired.control is None:
        if auto:
            return None
        raise InputError(
            f"--batch-key {key}: " + ("no such morphology column." if key not in obs
                                      else "per-batch normalisation needs --control."),
            "pass an existing column and --control, or --batch-key none",
        )  # fmt: skip
    ctrl = obs[paired.label_key].astype(str) == paired.control
    per_batch = ctrl.groupby(obs[key].astype(str).to_numpy()).sum()
    if (per_batch < MIN_CONTROLS).any():
        if auto:
            return None
        bad = per_batch.index[per_batch < MIN_CONTROLS][:3].tolist()
        raise InputError(f"--batch-key {key}: batch(es) {bad} have no '{paired.control}' cells.",
                         "pass a batch column whose batches all hold controls, or "
                         "--batch-key none")  # fmt: skip
    return key
