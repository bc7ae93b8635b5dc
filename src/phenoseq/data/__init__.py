"""Readers, validation, pairing and splits (the data contract of docs/data-contract.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .expression import read_expression, read_gct
from .morphology import join_platemap, read_morphology
from .pairing import PairedData, pair_by_treatment, summarize
from .split import Split, SplitConfig, make_split

if TYPE_CHECKING:
    from ..config import InputConfig


def load_paired(inputs: InputConfig) -> PairedData:
    """Read, validate, pair and split both modalities as described by ``inputs``."""
    morph = read_morphology(
        inputs.morphology,
        obsm_key=inputs.morphology_obsm,
        features=inputs.features,
        platemap=inputs.platemap,
    )
    expr = read_expression(
        inputs.expression,
        kind=inputs.expression_kind,
        layer=inputs.layer,
        obsm_key=inputs.expression_obsm,
        backed=inputs.backed,
    )
    return pair_by_treatment(
        morph, expr, inputs.pair_key, inputs.label_key, inputs.control, inputs.split
    )


__all__ = [
    "PairedData",
    "Split",
    "SplitConfig",
    "join_platemap",
    "load_paired",
    "make_split",
    "pair_by_treatment",
    "read_expression",
    "read_gct",
    "read_morphology",
    "summarize",
]
