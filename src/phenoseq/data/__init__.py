"""Readers, validation, pairing and splits (the data contract of docs/data-contract.md)."""

from __future__ import annotations

from ..config import InputConfig, SplitConfig
from .expression import read_expression, read_gct
from .morphology import join_platemap, read_morphology
from .pairing import PairedData, pair_by_treatment, summarize
from .split import Split, make_split


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


def describe_inputs(inputs: InputConfig) -> dict:
    """``phenoseq validate``: read, validate, pair and split the inputs; their summary."""
    return summarize(load_paired(inputs))


__all__ = [
    "describe_inputs",
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
