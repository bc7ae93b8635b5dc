"""Bounded memory: expression read backed from disk in blocks, and generation streamed to disk."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch

import phenoseq.data.expression as expression_mod
import phenoseq.data.transforms as transforms_mod
from conftest import SMALL, fast, write_pair
from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig, read_expression
from phenoseq.data.store import BlockShuffleBuffer
from phenoseq.errors import InputError
from phenoseq.model import PhenoSeqModel, train_model


@pytest.fixture
def files(tmp_path):
    return write_pair(tmp_path, sparse=True, n_treatments=3, n_reps=3, n_cells=10, n_feat=5,
                      n_genes=7)  # fmt: skip


def inputs(files, **kw) -> InputConfig:
    return InputConfig(files[0], files[1], control="DMSO",
                       split=SplitConfig("replicate", test=("3",)), **kw)  # fmt: skip


def test_read_backed_keeps_x_on_disk(files):
    backed = read_expression(files[1], backed=True)
    assert backed.isbacked and backed.uns["phenoseq"]["expression_kind"] == "counts"
    auto = read_expression(files[1])  # small: read into memory
    assert not auto.isbacked
    np.testing.assert_array_equal(backed.X[0:30].toarray(), auto.X[0:30].toarray())
    with pytest.raises(InputError, match="--backed reads X only"):
        read_expression(files[1], backed=True, layer="counts")


def test_backed_validation_names_the_rows(tmp_path, files, monkeypatch):
    expr = ad.read_h5ad(files[1])
    x = expr.X.toarray()
    x[25, 2] = 1.5
    expr.X = sp.csr_matrix(x)
    bad = tmp_path / "bad.h5ad"
    expr.write_h5ad(bad)
    monkeypatch.setattr(expression_mod, "BLOCK_ROWS", 10)
    with pytest.raises(InputError, match=r"rows 20-29: 1 non-integer value"):
        read_expression(bad, backed=True)


@pytest.mark.parametrize("ae_steps", [0, 4])
def test_backed_training_matches_in_memory(tmp_path, files, monkeypatch, ae_steps):
    """Without the autoencoder phase (the only one that samples differently: a block buffer)
    backed and in-memory training give the same model, read in several blocks."""
    torch.set_num_threads(1)
    monkeypatch.setattr(transforms_mod, "BLOCK_ROWS", 16)
    models = {
        mode: train_model(
            inputs(files, backed=mode),
            tmp_path / f"model_{mode}",
            SMALL,
            fast(ae_steps=ae_steps),
            progress=False,
        )  # fmt: skip
        for mode in (False, True)
    }
    mem, disk = models[False], models[True]
    for k in ("pseudobulk", "library", "library_offsets"):
        np.testing.assert_allclose(disk.group_stats[k], mem.group_stats[k], rtol=1e-6)
    if ae_steps == 0:
        for k, v in mem.diffusion.state_dict().items():
            torch.testing.assert_close(disk.diffusion.state_dict()[k], v, rtol=0, atol=0)
    loaded = PhenoSeqModel.load(tmp_path / "model_True")
    morph = ad.read_h5ad(files[0])
    gen = loaded.generate(morph[:20], n_cells=3, n_steps=2, progress=False)
    assert gen.shape == (6, 7) and np.isfinite(gen.layers["log1p"].toarray()).all()


def test_block_buffer_reads_only_eligible_runs():
    n = 1000
    eligible = np.flatnonzero((np.arange(n) // 50) % 3 != 1)  # runs of 50 with gaps of 50
    reads = []

    def read(lo, hi):
        reads.append((lo, hi))
        return {"row": np.arange(lo, hi)}

    buf = BlockShuffleBuffer(read, eligible, np.random.default_rng(0), block_rows=40,
                             n_blocks=5, refresh_every=2)  # fmt: skip
    ok = set(eligible.tolist())
    seen = set()
    rng = np.random.default_rng(1)
    for _ in range(200):
        rows = buf.batch(rng, 32)["row"]
        assert set(rows.tolist()) <= ok
        seen |= set(rows.tolist())
    assert all(set(range(lo, hi)) <= ok for lo, hi in reads)  # never reads ineligible rows
    assert buf.buffer["row"].shape == (5, 40)  # memory: n_blocks x block_rows
    assert len(seen) > 0.5 * len(eligible)  # refreshed blocks move over the file


def test_generate_to_streams_the_same_cells(tmp_path, files):
    torch.set_num_threads(1)
    model = train_model(inputs(files), tmp_path / "model", SMALL, fast(), progress=False)
    morph = ad.read_h5ad(files[0])
    mem = model.generate(morph, n_cells=4, n_steps=2, seed=3, progress=False)
    path = model.generate_to(tmp_path / "gen.h5ad", morph, n_cells=4, n_steps=2, seed=3,
                             progress=False, uns={"model": "m"})  # fmt: skip
    disk = ad.read_h5ad(path)
    np.testing.assert_array_equal(disk.X.toarray(), mem.X.toarray())
    np.testing.assert_array_equal(disk.layers["log1p"].toarray(), mem.layers["log1p"].toarray())
    np.testing.assert_array_equal(disk.layers["counts"].toarray(), mem.X.toarray())
    np.testing.assert_array_equal(disk.obsm["X_phenoseq"], mem.obsm["X_phenoseq"])
    assert disk.obs.equals(mem.obs) and list(disk.var_names) == list(mem.var_names)
    assert disk.uns["phenoseq"]["model"] == "m" and disk.uns["phenoseq"]["n_steps"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".gen")] == []


def test_calibrate_a_backed_model(tmp_path):
    """The default calibration data of a model trained --backed is read from disk in blocks."""
    from phenoseq.config import UncertaintyConfig
    from phenoseq.model import real_pseudobulk
    from phenoseq.uncertainty import calibrate_model

    torch.set_num_threads(1)
    m, e = write_pair(tmp_path, n_treatments=6, n_reps=3, n_cells=10, n_feat=5, n_genes=7)
    split = SplitConfig("replicate", calib=("2",), test=("3",))
    inp = InputConfig(m, e, control="DMSO", split=split, backed=True)
    model = train_model(inp, tmp_path / "model", SMALL, fast(), progress=False)
    draws = UncertaintyConfig(n_draws=4, n_cells_per_draw=5)
    cal = calibrate_model(tmp_path / "model", config=draws, progress=False)
    assert cal.n_groups == 6 and all(np.isfinite(cal.q_bulk[:2]))
    backed = real_pseudobulk(model, read_expression(e, backed=True))
    memory = real_pseudobulk(model, read_expression(e, backed=False))
    np.testing.assert_allclose(backed.to_numpy(), memory.to_numpy(), rtol=1e-12)


def test_evaluate_a_backed_model(tmp_path, files, monkeypatch):
    """Evaluating a model trained --backed reads a bounded per-group sample of its training
    cells (here capped at 4 of the 10 per group) instead of the whole file: the training cells
    the scoring receives are 4 distinct real cells of every training group."""
    import phenoseq.evaluate.run as run_mod
    from phenoseq.evaluate.run import evaluate

    torch.set_num_threads(1)
    monkeypatch.setattr(run_mod, "BACKED_TRAIN_CELLS_PER_GROUP", 4)
    received = []

    def score(data, *args, **kw):
        received.append(data)
        return real_score(data, *args, **kw)

    real_score = run_mod.score
    monkeypatch.setattr(run_mod, "score", score)
    model = train_model(inputs(files, backed=True), tmp_path / "model", SMALL, fast(),
                        progress=False)  # fmt: skip
    morph, expr = ad.read_h5ad(files[0]), ad.read_h5ad(files[1])
    m_test = morph[morph.obs["Replicate"] == "3"].copy()
    e_test = expr[expr.obs["Replicate"] == "3"].copy()
    gen = model.generate(m_test, n_cells=6, n_steps=2, progress=False)
    ev = evaluate(model, gen, e_test, m_test, k=3, progress=False)
    assert np.isfinite(ev.metrics["model"]["energy_distance"]["all"]["value"])
    assert "train_mean" in ev.metrics["baselines"]
    (train,) = [d.expr_train for d in received]
    groups, counts = np.unique(train.groups, return_counts=True)
    want = sorted(f"{t}_R{r}" for t in ("DMSO", "T1", "T2") for r in (1, 2))
    assert groups.tolist() == want and (counts == 4).all(), dict(zip(groups, counts, strict=True))
    counts_x = expr.X.toarray().astype(np.float64)
    real = np.log1p(counts_x / counts_x.sum(axis=1, keepdims=True) * 1e4)
    for g in want:  # 4 distinct real cells of that group
        pool = real[(expr.obs["Sample_ID"] == g).to_numpy()]
        rows = train.x[train.groups == g]
        match = [np.flatnonzero(np.abs(pool - row).max(axis=1) < 1e-9) for row in rows]
        assert all(len(m) == 1 for m in match), g
        assert len({int(m[0]) for m in match}) == 4, g


def test_open_backed_reads_only_obs_var_and_refuses_csc(tmp_path, files):
    from phenoseq.data.expression import open_backed

    expr = ad.read_h5ad(files[1])
    expr.layers["counts"] = expr.X.copy()  # as large as X: must stay on disk
    with_layer = tmp_path / "layer.h5ad"
    expr.write_h5ad(with_layer)
    a = open_backed(with_layer)
    assert a.isbacked and len(a.layers) == 0 and a.shape == expr.shape
    expr.X = sp.csc_matrix(expr.X)
    csc = tmp_path / "csc.h5ad"
    expr.write_h5ad(csc)
    with pytest.raises(InputError, match="csc_matrix; --backed reads rows"):
        read_expression(csc, backed=True)
