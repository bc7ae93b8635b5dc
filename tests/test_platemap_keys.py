"""Plate maps joined on plate + well, and pycytominer ``Metadata_`` keys pairing with plain ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_pair
from phenoseq.data import SplitConfig, join_platemap, pair_by_treatment
from phenoseq.errors import InputError


def test_platemap_with_a_plate_column_joins_on_plate_and_well(tmp_path):
    pm = pd.DataFrame({"plate": ["P1", "P2"], "well_position": ["A01", "A01"],
                       "Treatment": ["DMSO", "cmpA"]})  # fmt: skip
    pm.to_csv(tmp_path / "pm.tsv", sep="\t", index=False)
    obs = pd.DataFrame({"Metadata_Plate": ["P2", "P1", "P2"], "Metadata_Well": ["A01"] * 3})
    out = join_platemap(obs, tmp_path / "pm.tsv")
    assert out["Metadata_Treatment"].tolist() == ["cmpA", "DMSO", "cmpA"]
    with pytest.raises(InputError, match="not in the plate map.*P3 A01"):
        join_platemap(obs.assign(Metadata_Plate=["P3", "P1", "P2"]), tmp_path / "pm.tsv")
    with pytest.raises(InputError, match="no Metadata_Plate"):
        join_platemap(obs.drop(columns=["Metadata_Plate"]), tmp_path / "pm.tsv")
    pm.assign(plate="P1").to_csv(tmp_path / "dup.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="lists a plate \\+ well twice"):
        join_platemap(obs, tmp_path / "dup.tsv")


def test_metadata_prefixed_keys_pair_with_plain_ones():
    morph, expr = tiny_pair()
    plain = pair_by_treatment(morph, expr, control="DMSO", split=SplitConfig("replicate",
                                                                         test=("3",)))  # fmt: skip
    prefixed = morph.copy()
    prefixed.obs = prefixed.obs.rename(columns=lambda c: f"Metadata_{c}")
    paired = pair_by_treatment(prefixed, expr, control="DMSO",
                               split=SplitConfig("replicate", test=("3",)))  # fmt: skip
    assert paired.groups.equals(plain.groups)
    np.testing.assert_array_equal(paired.morphology.obs["phenoseq_group"],
                                  plain.morphology.obs["phenoseq_group"])  # fmt: skip


def _renamed_pair():
    """A pycytominer-style morphology (Metadata_broad_sample, Metadata_Plate) and an expression
    file naming the same things perturbation / replicate: no shared column names."""
    morph, expr = tiny_pair()
    morph.obs = morph.obs.rename(columns={"Treatment": "Metadata_broad_sample",
                                          "Replicate": "Metadata_Plate"}).drop(
        columns=["Sample_ID"])  # fmt: skip
    expr.obs = expr.obs.rename(columns={"Treatment": "perturbation", "Replicate": "replicate"})
    return morph, expr.copy()


def test_pair_keys_with_different_names_in_the_two_files():
    morph, expr = _renamed_pair()
    key = ("Metadata_broad_sample=perturbation", "Metadata_Plate=replicate")
    split = SplitConfig("replicate", "Metadata_Plate=replicate", test=("3",))
    paired = pair_by_treatment(morph, expr, key, control="DMSO", split=split)
    plain = pair_by_treatment(*tiny_pair(), ("Treatment", "Replicate"), control="DMSO",
                              split=SplitConfig("replicate", test=("3",)))  # fmt: skip
    assert paired.label_key == "Metadata_broad_sample"  # default: the first pair column
    assert paired.groups["label"].tolist() == plain.groups["label"].tolist()
    assert paired.groups["role"].tolist() == plain.groups["role"].tolist()
    assert paired.expression_columns == {"Metadata_broad_sample": "perturbation",
                                         "Metadata_Plate": "replicate"}  # fmt: skip


def test_control_missing_from_the_label_names_the_label_key_fix():
    morph, expr = tiny_pair()
    morph.obs["well_type"] = np.where(morph.obs["Treatment"] == "DMSO", "negcon", "trt")
    with pytest.raises(InputError, match="Fix: pass --label-key Treatment"):
        pair_by_treatment(morph, expr, ("Sample_ID",), label_key="Replicate", control="DMSO")
    with pytest.raises(InputError, match="Fix: pass --control with an existing label"):
        pair_by_treatment(morph, expr, ("Sample_ID",), control="DMSO_missing")
