"""Experiment rounds in the simulator: replicates nested in rounds, round effects, roles."""

from __future__ import annotations

import dataclasses

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr

from phenoseq import _keys as K
from phenoseq.errors import InputError
from phenoseq.simulate import SimulatorConfig, make_world, sample_truth, simulate
from phenoseq.simulate.design import OBS_COLUMNS, ROUND
from phenoseq.simulate.model import GroundTruthModel
from phenoseq.simulate.truth import read_truth_info

ROUNDS = SimulatorConfig(
    n_treatments=4, doses=(1.0, 10.0), n_unseen_compounds=1, n_replicates=5, rounds=(4, 1),
    n_morphology_cells=6, n_expression_cells=7, n_truth_cells=5, n_genes=40, n_fields=0,
    n_surrogate_cells=96, features_only=True,
)  # fmt: skip
FILES = ("morphology.h5ad", "expression.h5ad", "truth.h5ad")
ROLES = {"1": "train", "2": "train", "3": "calib", "4": "test", "5": "test_round"}


@pytest.fixture(scope="module")
def rounds(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("rounds") / "out", ROUNDS)


def test_replicates_nest_in_rounds_with_their_roles(rounds):
    for name in FILES:
        adata = ad.read_h5ad(rounds / name)
        obs = adata.obs
        assert list(obs.columns)[: len(OBS_COLUMNS)] == list(OBS_COLUMNS)
        assert isinstance(obs[ROUND].dtype, pd.CategoricalDtype)
        pairs = obs[[K.REPLICATE, ROUND]].astype(str).drop_duplicates()
        assert dict(pairs.itertuples(index=False)) == {"1": "1", "2": "1", "3": "1", "4": "1",
                                                       "5": "2"}  # fmt: skip
        info = adata.uns[K.UNS]
        assert list(info["rounds"]) == ["1", "2"]
        assert dict(info["replicate_rounds"]) == dict(pairs.itertuples(index=False))
        assert dict(info["replicate_roles"]) == ROLES
        assert list(info["heldout_replicates"]) == ["3", "4", "5"]
        assert SimulatorConfig.from_dict(info["config"]) == ROUNDS
        # unseen compounds in every non-training replicate, and only there
        unseen = list(info["unseen_treatments"])
        reps = obs.loc[obs[K.TREATMENT].isin(unseen), K.REPLICATE].astype(str)
        assert set(reps) == {"3", "4", "5"}
        n_all = len(info["treatments"]["label"])
        assert obs.groupby(K.REPLICATE, observed=True)[K.TREATMENT].nunique()["5"] == n_all


def test_rendered_wells_and_platemap_carry_the_round(tmp_path):
    cfg = ROUNDS.replace(features_only=False, write_images=True, n_morphology_cells=2, n_sites=1,
                         n_fields=1, field_size=128)  # fmt: skip
    out = simulate(tmp_path / "img", cfg)
    pm = pd.read_csv(out / "images" / "platemap.tsv", sep="\t", dtype=str)
    assert dict(pm[[K.REPLICATE, ROUND]].drop_duplicates().itertuples(index=False)) == {
        "1": "1", "2": "1", "3": "1", "4": "1", "5": "2"
    }  # fmt: skip
    fields = zarr.open_group(str(out / "fields.zarr"), mode="r")
    assert all(meta[ROUND] in ("1", "2") for meta in fields.attrs["fields"])


def test_one_round_is_todays_experiment():
    base = SimulatorConfig(n_treatments=6, n_unseen_compounds=1, n_genes=40)
    world, same = make_world(base), make_world(base.replace(rounds=(4,)))
    assert set(world.design.samples[ROUND]) == {"1"} and world.design.rounds == ["1"]
    assert world.model.round_state.size == 0 and world.model.round_of(3) is None
    for a, b in zip(world.model.to_uns().values(), same.model.to_uns().values(), strict=True):
        assert a == b if isinstance(a, dict | float | int) else np.array_equal(a, b)
    # round effects come from a stream of their own: the replicate-level model does not move
    split = make_world(base.replace(rounds=(3, 1))).model
    for name in ("state_batch", "expr_batch", "morph_batch", "channel_gain", "blur"):
        np.testing.assert_array_equal(getattr(split, name), getattr(world.model, name))
    assert split.round_state.shape == (2, base.n_programs) and split.round_of(3) == 1


def _dmso_replicate_distances(adata: ad.AnnData, x: np.ndarray) -> tuple[float, float]:
    """Median distance between DMSO means of two round-1 replicates, and between the round-2
    replicate's and each round-1 replicate's."""
    dmso = (adata.obs[K.TREATMENT] == "DMSO").to_numpy()
    rep = adata.obs[K.REPLICATE].astype(str).to_numpy()
    means = {r: x[dmso & (rep == r)].mean(axis=0) for r in "12345"}
    within = [np.linalg.norm(means[a] - means[b]) for a in "1234" for b in "1234" if a < b]
    across = [np.linalg.norm(means["5"] - means[a]) for a in "1234"]
    return float(np.median(within)), float(np.median(across))


def test_a_round_shifts_both_modalities_more_than_a_replicate(tmp_path):
    cfg = ROUNDS.replace(n_treatments=2, doses=(1.0,), n_unseen_compounds=0,
                         n_morphology_cells=200, n_expression_cells=200, n_truth_cells=1,
                         n_genes=100, n_surrogate_cells=256)  # fmt: skip
    out = simulate(tmp_path / "big", cfg)
    morph, expr = (ad.read_h5ad(out / f) for f in FILES[:2])
    z = (np.asarray(morph.X) - morph.X.mean(axis=0)) / morph.X.std(axis=0)
    counts = expr.X.toarray()
    logs = np.log1p(1e4 * counts / counts.sum(axis=1, keepdims=True))
    for adata, x in ((morph, z), (expr, logs)):
        within, across = _dmso_replicate_distances(adata, x)
        assert across > 1.3 * within  # measured 1.5-2.3x (seeds 0-2); the truth is sqrt(5)x


def test_sample_truth_of_a_later_round_carries_its_round(rounds):
    a = sample_truth(rounds, "DMSO", "5", 2000, seed=1)
    assert (a.obs[ROUND] == "2").all() and (a.obs[K.SAMPLE_ID] == "DMSO_R5").all()
    b = sample_truth(rounds, "DMSO", "4", 2000, seed=1)
    assert (b.obs[ROUND] == "1").all()
    model = GroundTruthModel.from_uns(read_truth_info(rounds)["model"])
    assert list(model.replicate_round) == [0, 0, 0, 0, 1]
    expected = model.state_batch[4] - model.state_batch[3] + model.round_state[1]
    expected -= model.round_state[0]
    shift = a.obsm["X_state"].mean(axis=0) - b.obsm["X_state"].mean(axis=0)
    assert np.linalg.norm(shift - expected) < 0.2 * np.linalg.norm(expected)


def test_a_model_written_before_rounds_still_loads():
    model = make_world(SimulatorConfig(n_treatments=2, n_genes=20, n_unseen_compounds=0)).model
    names = [f.name for f in dataclasses.fields(model)]
    new = {k for k in names if k.startswith("round_") or k == "replicate_round"}
    old = {k: v for k, v in model.to_uns().items() if k not in new}
    assert len(new) == 8
    assert GroundTruthModel.from_uns(old).round_of(0) is None


@pytest.mark.parametrize(
    "change",
    [
        {"rounds": (4, 1)},  # 5 replicates in rounds, 4 declared
        {"rounds": (1, 3)},  # round 1 cannot hold both training and test
        {"rounds": (2, 2)},  # unseen compounds need train, calib and test in round 1
        {"rounds": (4, 0), "n_replicates": 4},
        {"round_state_ratio": -0.1},
    ],
)
def test_bad_rounds_raise_one_line_with_a_fix(change):
    with pytest.raises(InputError) as exc:
        SimulatorConfig(**change)
    assert exc.value.fix and "\n" not in str(exc.value)


def test_cli_rounds_flag_sets_the_replicates(tmp_path):
    from phenoseq.cli._data import simulator_config

    names = ("n_treatments", "n_unseen_compounds", "n_truth_cells", "n_genes", "n_fields",
             "chunk_size", "n_replicates", "doses", "n_cells_per_sample", "n_morphology_cells",
             "n_expression_cells")  # fmt: skip
    flags = dict.fromkeys(names)
    cfg = simulator_config(flags | {"seed": 1, "features_only": True, "images": False,
                                    "rounds": "4,1"})  # fmt: skip
    assert cfg.rounds == (4, 1) and cfg.n_replicates == 5 and cfg.seed == 1
    with pytest.raises(InputError, match="rounds \\(4, 1\\) hold 5 replicates, not 4"):
        simulator_config(flags | {"seed": 0, "features_only": True, "images": False,
                                  "rounds": "4,1", "n_replicates": 4})  # fmt: skip
