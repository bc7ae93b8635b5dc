"""Splits: roles by replicate or treatment, saved and re-checked; leaks are errors."""

from __future__ import annotations

import json

import pytest

from conftest import tiny_pair
from phenoseq.data import Split, SplitConfig, pair_by_treatment
from phenoseq.errors import InputError


def test_replicate_split_roles_and_roundtrip():
    morph, expr = tiny_pair(n_reps=4)
    cfg = SplitConfig("replicate", calib=("3",), test=("4",))
    p = pair_by_treatment(morph, expr, control="DMSO", split=cfg)
    assert p.split.groups("test") == ["DMSO_R4", "T1_R4", "T2_R4"]
    assert p.groups.loc["T1_R3", "role"] == "calib"
    assert set(p.expression.obs.loc[p.expression.obs["Replicate"] == "1", "phenoseq_role"]) == {
        "train"
    }
    again = Split.from_dict(json.loads(json.dumps(p.split.to_dict())))
    assert again.roles == p.split.roles and again.config == cfg
    again.check()
    again.check_held_out(p.split.groups("test"))
    with pytest.raises(InputError, match="were in training"):
        again.check_held_out(["T1_R1", "T1_R4"])


def test_treatment_split_holds_out_every_group_of_a_treatment():
    morph, expr = tiny_pair(n_treatments=4)
    p = pair_by_treatment(morph, expr, split=SplitConfig("treatment", test=("T3",)))
    assert p.split.groups("test") == ["T3_R1", "T3_R2", "T3_R3"]
    assert "T3" not in set(p.groups.loc[p.split.groups("train"), "label"])


def test_check_detects_tampered_split():
    morph, expr = tiny_pair()
    p = pair_by_treatment(morph, expr, split=SplitConfig("treatment", test=("T2",)))
    d = p.split.to_dict()
    d["roles"]["T2_R1"] = "train"  # a test treatment sneaks into training
    with pytest.raises(InputError, match="also appear in training"):
        Split.from_dict(d).check()


def test_multi_column_pair_key():
    morph, expr = tiny_pair()
    p = pair_by_treatment(
        morph,
        expr,
        pair_key=("Treatment", "Replicate"),
        split=SplitConfig("replicate", test=("3",)),
    )
    assert "T1|3" in p.split.groups("test")
    assert p.groups["n_morphology"].eq(6).all()
