"""Pair the two modalities on treatment: cells are never matched one-to-one, only by group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import anndata as ad
import numpy as np
import pandas as pd

from .. import _keys as K
from ..config import SplitConfig
from ..errors import InputError
from .expression import open_backed
from .split import Split, make_split


@dataclass
class PairedData:
    """Morphology and expression with a shared pairing-group column and a split.

    ``groups`` has one row per pairing group (index: group id) and columns ``label``,
    ``n_morphology``, ``n_expression``, ``is_control``, ``role``.
    """

    morphology: ad.AnnData
    expression: ad.AnnData
    groups: pd.DataFrame
    split: Split
    pair_key: tuple[str, ...]
    label_key: str
    control: str | None
    # key columns named differently in the expression: canonical (morphology) name -> its name
    expression_columns: dict[str, str] = field(default_factory=dict)

    @property
    def shared(self) -> list[str]:
        g = self.groups
        return g.index[(g.n_morphology > 0) & (g.n_expression > 0)].tolist()


def with_key_aliases(obs: pd.DataFrame, names: Sequence[str | None]) -> pd.DataFrame:
    """``obs`` plus a column for every name in ``names`` that is missing but present with (or
    without) the pycytominer ``Metadata_`` prefix, so ``Metadata_Sample_ID`` from a plate map
    pairs with ``Sample_ID`` in expression. Returns ``obs`` itself when nothing is added."""
    add = {}
    for name in dict.fromkeys(n for n in names if n):
        if name in obs.columns:
            continue
        alt = name[len(K.META_PREFIX) :] if name.startswith(K.META_PREFIX) else K.META_PREFIX + name
        if alt in obs.columns:
            add[name] = obs[alt]
    return obs.assign(**add) if add else obs


def split_key(spec: str) -> tuple[str, str]:
    """``MORPH_COL=EXPR_COL`` -> the column in each modality; a bare name is the same in both."""
    morph, _, expr = spec.partition("=")
    morph, expr = morph.strip(), (expr or morph).strip()
    if not morph or not expr:
        raise InputError(f"key '{spec}' names no column on one side.",
                         "write MORPH_COL=EXPR_COL, or one name for both files")  # fmt: skip
    return morph, expr


def with_expression_columns(obs: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``obs`` of an expression file plus the canonical (morphology-side) name of every key
    column it names differently (``columns``: canonical -> expression name)."""
    add = {m: obs[e] for m, e in columns.items() if m not in obs.columns and e in obs.columns}
    return obs.assign(**add) if add else obs


def group_ids(obs: pd.DataFrame, pair_key: Sequence[str], side: str) -> pd.Series:
    """The pairing-group id of every row: the pair-key values joined by ``|``."""
    missing = [k for k in pair_key if k not in obs.columns]
    if missing:
        cols = [c for c in obs.columns][:8]
        raise InputError(
            f"pair key {missing} is absent from the {side} (columns include {cols}).",
            "pass --pair-key with columns present in both modalities (or add them, e.g. with "
            "--platemap)",
        )
    parts = obs[list(pair_key)]
    if parts.isna().any().any():
        n = int(parts.isna().any(axis=1).sum())
        raise InputError(
            f"{n} {side} row(s) have no value for the pair key {list(pair_key)}.",
            "fill or drop those rows",
        )
    return parts.astype(str).agg(K.GROUP_SEP.join, axis=1)


def _labels(obs: pd.DataFrame, groups: pd.Series, label_key: str, side: str) -> pd.Series:
    lab = obs[label_key].astype(str)
    n_per = lab.groupby(groups.to_numpy()).nunique()
    if (n_per > 1).any():
        raise InputError(
            f"{side} group(s) {n_per[n_per > 1].index[:3].tolist()} hold several '{label_key}' "
            "values.",
            "pair on a key at least as fine as the label (e.g. --pair-key Sample_ID)",
        )
    return lab.groupby(groups.to_numpy()).first()


def pair_by_treatment(
    morphology: ad.AnnData,
    expression: ad.AnnData,
    pair_key: Sequence[str] = (K.SAMPLE_ID,),
    label_key: str | None = None,
    control: str | None = None,
    split: SplitConfig | None = None,
) -> PairedData:
    """Pair morphology and expression rows by treatment group and split the groups.

    Parameters
    ----------
    pair_key
        Column(s) pairing the modalities; rows with equal values form one pairing group. A
        column named differently in the two files is given as ``MORPH_COL=EXPR_COL`` (so are
        ``label_key`` and the split's ``replicate_key``); ``Metadata_``-prefixed names also
        match their bare form. The morphology names are used from then on.
    label_key
        The treatment label of a group (constant within it); default ``Treatment`` when that
        column exists on both sides, else the first pair column.
    control
        Label of the control treatment (e.g. ``"DMSO"``); must occur in the data.
    split
        How to split the groups; default: every group trains.

    Returns
    -------
    :class:`PairedData` with copies of both AnnData carrying ``obs['phenoseq_group']``.
    """
    split = split or SplitConfig()
    pairs = [split_key(k) for k in pair_key]
    named = pairs + [split_key(k) for k in (label_key, split.replicate_key) if k]
    columns = {m: e for m, e in named if m != e}
    pair_key = tuple(m for m, _ in pairs)
    label_key = split_key(label_key)[0] if label_key else None
    split = replace(split, replicate_key=split_key(split.replicate_key)[0])
    morph, expr = morphology.copy(), _copy_obs(expression)
    keys = (*pair_key, label_key or K.TREATMENT, split.replicate_key)
    morph.obs = with_key_aliases(morph.obs, keys)
    expr.obs = with_key_aliases(with_expression_columns(expr.obs, columns), keys)
    morph.obs[K.GROUP] = group_ids(morph.obs, pair_key, "morphology").to_numpy()
    expr.obs[K.GROUP] = group_ids(expr.obs, pair_key, "expression").to_numpy()
    if label_key is None:
        both = K.TREATMENT in morph.obs and K.TREATMENT in expr.obs
        label_key = K.TREATMENT if both else pair_key[0]
    lab = [
        _labels(a.obs, a.obs[K.GROUP], label_key, s)
        for a, s in ((morph, "morphology"), (expr, "expression"))
        if label_key in a.obs
    ]
    if not lab:
        raise InputError(f"label key '{label_key}' is in neither modality.", "pass --label-key COL")
    n_m = morph.obs[K.GROUP].value_counts()
    n_e = expr.obs[K.GROUP].value_counts()
    if not set(n_m.index) & set(n_e.index):
        raise InputError(
            f"no pairing group is shared by the two modalities (morphology e.g. "
            f"{n_m.index[:2].tolist()}, expression e.g. {n_e.index[:2].tolist()}).",
            f"check --pair-key {','.join(pair_key)}: both sides must use the same values",
        )
    groups = pd.DataFrame(index=sorted(set(n_m.index) | set(n_e.index)))
    groups["label"] = pd.concat(lab).groupby(level=0).first().reindex(groups.index)
    groups["n_morphology"] = n_m.reindex(groups.index).fillna(0).astype(int)
    groups["n_expression"] = n_e.reindex(groups.index).fillna(0).astype(int)
    if control is not None and control not in set(groups["label"]):
        raise InputError(
            f"control '{control}' is not a value of the label column '{label_key}' "
            f"(e.g. {groups['label'].unique()[:5].tolist()}).",
            _control_fix(control, morph.obs, expr.obs),
        )
    groups["is_control"] = groups["label"] == control if control is not None else False
    sp = make_split(groups, [morph.obs, expr.obs], K.GROUP, split)
    groups["role"] = pd.Series(sp.roles).reindex(groups.index).to_numpy()
    for a in (morph, expr):
        a.obs[K.ROLE] = groups["role"].reindex(a.obs[K.GROUP]).to_numpy()
    return PairedData(morph, expr, groups, sp, pair_key, label_key, control, columns)


def _control_fix(control: str, *obs: pd.DataFrame) -> str:
    """Where the control value is: the --label-key to pass, else a hint to check --control."""
    holders = [c for o in obs for c in o.columns
               if c != K.GROUP and (o[c].astype(str) == control).any()]  # fmt: skip
    if holders:
        return f"pass --label-key {holders[0]} (the column that holds '{control}')"
    return "pass --control with an existing label (or --label-key naming the treatment column)"


def _copy_obs(adata: ad.AnnData) -> ad.AnnData:
    """A copy whose ``obs`` can be changed freely; a backed AnnData gets a fresh handle on the
    same file (its ``X`` stays on disk) instead of a copy into memory."""
    if not adata.isbacked:
        return adata.copy()
    if adata.is_view:
        raise InputError("a subset (view) of a backed AnnData cannot be paired.",
                         "pass the whole backed file, or adata[rows].to_memory()")  # fmt: skip
    out = open_backed(adata.filename)
    out.obs, out.uns = adata.obs.copy(), dict(adata.uns)
    return out


def summarize(paired: PairedData) -> dict:
    """A JSON-able summary: sizes, groups per role, cells per group per modality, controls."""
    g = paired.groups
    shared = g.loc[paired.shared]

    def stats(v: pd.Series) -> dict:
        return {"min": int(v.min()), "median": float(np.median(v)), "max": int(v.max())}

    return {
        "morphology": {"n_rows": paired.morphology.n_obs, "n_features": paired.morphology.n_vars},
        "expression": {
            "n_rows": paired.expression.n_obs,
            "n_genes": paired.expression.n_vars,
            "kind": paired.expression.uns.get(K.UNS, {}).get(K.EXPRESSION_KIND, "counts"),
        },
        "pair_key": list(paired.pair_key),
        "label_key": paired.label_key,
        "n_groups_shared": len(shared),
        "n_groups_morphology_only": int(((g.n_morphology > 0) & (g.n_expression == 0)).sum()),
        "n_groups_expression_only": int(((g.n_morphology == 0) & (g.n_expression > 0)).sum()),
        "n_labels": int(shared["label"].nunique()),
        "cells_per_group": {
            "morphology": stats(shared.n_morphology),
            "expression": stats(shared.n_expression),
        },
        "control": paired.control,
        "n_control_groups": int(shared["is_control"].sum()),
        "split": paired.split.config.kind,
        "roles": {
            r: {
                "groups": int((shared.role == r).sum()),
                "labels": int(shared.loc[shared.role == r, "label"].nunique()),
            }
            for r in ("train", "val", "calib", "test")
        },
    }
