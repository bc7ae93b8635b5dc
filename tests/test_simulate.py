"""The ground-truth simulator: layout, alignment, determinism, design rules, streaming, CLI."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr

from phenoseq import _keys as K
from phenoseq.cli import main
from phenoseq.data.features import infer_features
from phenoseq.errors import InputError
from phenoseq.simulate import (
    CHANNELS,
    SimulatorConfig,
    feature_names,
    measure_crops,
    sample_truth,
    simulate,
)
from phenoseq.simulate import core as sim_core
from phenoseq.simulate.design import OBS_COLUMNS, ROUND
from phenoseq.writers import H5adWriter, rechunk

TINY = SimulatorConfig(
    n_treatments=4, doses=(1.0, 10.0), n_unseen_compounds=1, n_replicates=4,
    n_morphology_cells=6, n_expression_cells=7, n_truth_cells=9, n_genes=40,
    n_fields=2, field_size=128, n_surrogate_cells=96, chunk_size=16,
)  # fmt: skip
FILES = ("morphology.h5ad", "expression.h5ad", "truth.h5ad")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("sim") / "out", TINY)


def read(folder, name="morphology.h5ad"):
    return ad.read_h5ad(folder / name)


def n_samples(adata):
    return adata.obs[K.SAMPLE_ID].nunique()


def test_layout_shapes_and_obs_columns(sim):
    morph, expr, truth = (read(sim, f) for f in FILES)
    assert list(morph.obs.columns) == list(OBS_COLUMNS)
    assert list(expr.obs.columns) == list(OBS_COLUMNS)
    assert list(truth.obs.columns) == [*OBS_COLUMNS, "responder"]
    # 5 treatments x 4 replicates, 2 of them absent from the two train replicates
    assert n_samples(morph) == n_samples(expr) == n_samples(truth) == 5 * 4 - 2 * 2
    assert morph.shape == (16 * 6, len(feature_names()))
    assert expr.shape == (16 * 7, 40) and truth.shape == (16 * 9, 40)
    assert morph.X.dtype == np.float32 and np.isfinite(morph.X).all()
    assert infer_features(morph.var_names) == list(morph.var_names)
    assert sorted(morph.obs[K.REPLICATE].unique()) == ["1", "2", "3", "4"]
    assert all(set(a.obs[ROUND]) == {"1"} for a in (morph, expr, truth))  # one round by default
    assert set(morph.obs[K.SITE]) == {1, 2, 3, 4} and set(expr.obs[K.SITE]) == {0}
    assert morph.obs.loc[morph.obs[K.TREATMENT] == "DMSO", K.DOSE].eq(0).all()
    assert morph.obs.groupby(K.SAMPLE_ID, observed=True)[K.WELL].nunique().eq(1).all()
    crops = zarr.open_group(str(sim / "crops.zarr"), mode="r")
    assert crops["images"].shape == (morph.n_obs, 5, 64, 64) and crops["images"].dtype == np.uint8
    assert crops["labels"].shape == (morph.n_obs, 64, 64)
    assert list(crops.attrs["channels"]) == list(CHANNELS)


def test_populations_are_distinct_and_hidden_state_stays_hidden(sim):
    morph, expr, truth = (read(sim, f) for f in FILES)
    names = [set(a.obs_names) for a in (morph, expr, truth)]
    assert not (names[0] & names[1]) and not (names[1] & names[2]) and not (names[0] & names[2])
    for adata in (morph, expr):
        assert len(adata.obsm) == 0 and "responder" not in adata.obs
        assert "model" not in adata.uns[K.UNS]
    assert truth.obsm["X_state"].shape == (truth.n_obs, TINY.n_programs)


def test_uns_records_seed_parameters_and_unseen(sim):
    for name in FILES:
        info = read(sim, name).uns[K.UNS]
        assert info["seed"] == TINY.seed
        assert SimulatorConfig.from_dict(info["config"]) == TINY
        assert list(info["unseen_treatments"]) == [f"{info['unseen_compounds'][0]}_{d}uM"
                                                   for d in (1, 10)]  # fmt: skip
        assert list(info["heldout_replicates"]) == ["3", "4"]
        assert dict(info["replicate_roles"]) == {"1": "train", "2": "train", "3": "calib",
                                                 "4": "test"}  # fmt: skip
        assert list(info["rounds"]) == ["1"]
        assert dict(info["replicate_rounds"]) == {r: "1" for r in "1234"}


def test_unseen_treatments_only_in_heldout_replicates(sim):
    for name in FILES:
        adata = read(sim, name)
        unseen = list(adata.uns[K.UNS]["unseen_treatments"])
        reps = adata.obs.loc[adata.obs[K.TREATMENT].isin(unseen), K.REPLICATE].astype(str)
        assert set(reps) == {"3", "4"}


def test_crops_align_with_morphology_rows(sim):
    morph = read(sim)
    crops = zarr.open_group(str(sim / "crops.zarr"), mode="r")
    rows = np.array([0, 7, morph.n_obs // 2, morph.n_obs - 1])
    again = measure_crops(crops["images"][rows], crops["labels"][rows])
    np.testing.assert_allclose(again, morph.X[rows], rtol=1e-5, atol=1e-6)


def test_counts_are_nonnegative_integers_with_realistic_depth(sim):
    for name in ("expression.h5ad", "truth.h5ad"):
        x = read(sim, name).X
        assert sp.issparse(x)
        assert (x.data >= 0).all() and np.array_equal(x.data, np.round(x.data))
    depth = np.asarray(read(sim, "expression.h5ad").X.sum(axis=1)).ravel()
    assert 1000 < np.median(depth) < 10000


def test_fields_have_several_labelled_cells(sim):
    fields = zarr.open_group(str(sim / "fields.zarr"), mode="r")
    assert fields["images"].shape == (2, 5, 128, 128)
    for i, meta in enumerate(fields.attrs["fields"]):
        cells, nuclei = fields["cells"][i], fields["nuclei"][i]
        assert meta["n_cells"] >= 1 and cells.max() == meta["n_cells"]
        assert set(np.unique(nuclei[nuclei > 0])) <= set(np.unique(cells[cells > 0]))


def _arrays(folder):
    out = {name: read(folder, name) for name in FILES}
    return out, zarr.open_group(str(folder / "crops.zarr"), mode="r")["images"][:]


def test_same_seed_same_files_other_seed_differs(sim, tmp_path):
    again = simulate(tmp_path / "again", TINY.replace(chunk_size=5))  # chunking must not matter
    other = simulate(tmp_path / "other", TINY.replace(seed=1))
    (a, crops_a), (b, crops_b), (c, crops_c) = _arrays(sim), _arrays(again), _arrays(other)
    for name in FILES:
        x, y = a[name].X, b[name].X
        assert (x != y).nnz == 0 if sp.issparse(x) else np.array_equal(x, y)
        pd.testing.assert_frame_equal(a[name].obs, b[name].obs)
    np.testing.assert_array_equal(crops_a, crops_b)
    assert not np.array_equal(a["morphology.h5ad"].X, c["morphology.h5ad"].X)
    assert not np.array_equal(crops_a, crops_c)


def test_sample_truth_shape_determinism_and_errors(sim):
    a = sample_truth(sim, "DMSO", "4", 25, seed=3)
    assert a.shape == (25, 40) and list(a.obs.columns) == [*OBS_COLUMNS, "responder"]
    assert a.obsm["X_state"].shape == (25, TINY.n_programs)
    assert (a.obs[K.SAMPLE_ID] == "DMSO_R4").all()
    b = sample_truth(sim, "DMSO", 4, 25, seed=3)
    assert (a.X != b.X).nnz == 0
    c = sample_truth(sim, "DMSO", "4", 25, seed=4)
    assert (a.X != c.X).nnz > 0
    unseen = read(sim, "truth.h5ad").uns[K.UNS]["unseen_treatments"][0]
    assert sample_truth(sim, unseen, "1", 3).n_obs == 3  # absent from the experiment, still defined
    with pytest.raises(InputError):
        sample_truth(sim, "nope", "1", 3)
    with pytest.raises(InputError):
        sample_truth(sim, "DMSO", "9", 3)


def test_features_only_streams_in_bounded_chunks(tmp_path, monkeypatch, sim):
    rows: list[int] = []
    original = H5adWriter.append

    def spy(self, x, *args, **kwargs):
        rows.append(x.shape[0])
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(H5adWriter, "append", spy)
    out = simulate(tmp_path / "fo", TINY.replace(features_only=True, chunk_size=10))
    assert not (out / "crops.zarr").exists() and not (out / "fields.zarr").exists()
    assert max(rows) == 10 and min(rows) >= 1
    fo, rendered = read(out), read(sim)
    pd.testing.assert_frame_equal(fo.obs, rendered.obs)
    assert list(fo.var_names) == list(rendered.var_names)
    assert np.isfinite(fo.X).all() and fo.X.std(axis=0).min() > 0
    assert ad.read_h5ad(out / "expression.h5ad", backed="r").shape == (16 * 7, 40)


def test_rechunk_gives_exact_chunks_dense_and_sparse():
    blocks = [
        (np.full((n, 2), i), sp.csr_matrix(np.full((n, 3), i))) for i, n in enumerate([3, 1, 5])
    ]
    chunks = list(rechunk(iter(blocks), 4))
    assert [c[0].shape[0] for c in chunks] == [4, 4, 1]
    assert np.array_equal(np.concatenate([c[0] for c in chunks])[:, 0], [0, 0, 0, 1, 2, 2, 2, 2, 2])
    assert sp.vstack([c[1] for c in chunks]).shape == (9, 3)


@pytest.mark.parametrize(
    "change",
    [{"n_treatments": 1}, {"n_replicates": 2}, {"n_unseen_compounds": 2}, {"doses": ()}],
)
def test_bad_parameters_raise_input_error(change):
    with pytest.raises(InputError):
        TINY.replace(**change)


def test_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sim_core, "_write_counts", boom)
    with pytest.raises(RuntimeError):
        simulate(tmp_path / "out", TINY)
    assert list(tmp_path.iterdir()) == []


def test_cli_simulate_and_bad_parameter(tmp_path, capsys):
    out = tmp_path / "cli"
    main(["simulate", "--out", str(out), "--seed", "2", "--n-treatments", "3", "--doses", "1",
          "--n-replicates", "3", "--n-cells-per-sample", "4", "--n-truth-cells", "5",
          "--n-genes", "20", "--n-fields", "1", "--quiet"])  # fmt: skip
    printed = capsys.readouterr().out
    assert str(out) in printed and "4 treatments" in printed
    morph = read(out)
    assert morph.uns[K.UNS]["seed"] == 2 and morph.n_obs == (4 * 3 - 2 * 1) * 4
    bad = tmp_path / "bad"
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--out", str(bad), "--n-treatments", "1", "--quiet"])
    assert exc.value.code == 2
    assert "n_treatments" in capsys.readouterr().err
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["cli"]


def test_tiny_libraries_never_give_empty_cells(tmp_path):
    # with ~2 UMIs per cell many cells would be drawn empty; like cell calling, none are kept
    cfg = TINY.replace(median_umis=2.0, features_only=True, n_expression_cells=40)
    out = simulate(tmp_path / "low", cfg)
    x = ad.read_h5ad(out / "expression.h5ad").X
    assert np.asarray(x.sum(axis=1)).min() >= 1
    from phenoseq.data import read_expression

    read_expression(out / "expression.h5ad")  # passes the count checks
