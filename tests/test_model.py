"""The user-facing model on tiny data: train, generate, save/load, resume, other targets."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from conftest import SMALL, fast, tiny_pair
from phenoseq.cli import main
from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig
from phenoseq.model import PhenoSeqModel, train_model


@pytest.fixture
def files(tmp_path):
    morph, expr = tiny_pair(n_treatments=3, n_reps=3, n_cells=8, n_feat=5, n_genes=7)
    expr.var["gene_symbols"] = [f"SYM{j}" for j in range(7)]
    m, e = tmp_path / "m.h5ad", tmp_path / "e.h5ad"
    morph.write_h5ad(m)
    expr.write_h5ad(e)
    return m, e


def inputs(files, **kw) -> InputConfig:
    split = SplitConfig("replicate", test=("3",))
    return InputConfig(files[0], files[1], control="DMSO", split=split, **kw)


def test_train_generate_save_load(tmp_path, files):
    torch.set_num_threads(1)
    model = train_model(inputs(files), tmp_path / "model", SMALL, fast(), progress=False)
    assert (tmp_path / "model" / "weights.safetensors").is_file()
    assert not (tmp_path / ".model.checkpoint").exists()
    morph = ad.read_h5ad(files[0])
    test = morph[morph.obs["Replicate"] == "3"].copy()
    gen = model.generate(test, n_cells=5, n_steps=4, seed=1, progress=False)
    assert gen.shape == (15, 7)
    assert gen.var_names.tolist() == [f"G{j}" for j in range(7)]
    x = gen.X.toarray()
    assert (x >= 0).all() and np.array_equal(x, np.round(x))
    assert gen.layers["log1p"].shape == (15, 7) and gen.obsm["X_phenoseq"].shape == (15, 4)
    # scverse form: counts kept beside X (normalize_total would overwrite X), a sparse log1p
    # view, the training var columns, names unique across outputs of different groups
    np.testing.assert_array_equal(gen.layers["counts"].toarray(), x)
    assert sp.issparse(gen.layers["log1p"]) and gen.layers["log1p"].nnz == gen.X.nnz
    np.testing.assert_allclose(gen.layers["log1p"].toarray(),
                               np.log1p(x / x.sum(1, keepdims=True) * 1e4), rtol=1e-5)  # fmt: skip
    assert gen.var["gene_symbols"].tolist() == [f"SYM{j}" for j in range(7)]
    assert gen.obs_names.is_unique and gen.obs_names[0] == "DMSO_R3-0"
    assert set(gen.obs["phenoseq_group"]) == {"DMSO_R3", "T1_R3", "T2_R3"}
    assert (gen.obs.groupby("phenoseq_group")["Treatment"].nunique() == 1).all()
    assert gen.uns["phenoseq"]["seed"] == 1
    loaded = PhenoSeqModel.load(tmp_path / "model")
    again = loaded.generate(test, n_cells=5, n_steps=4, seed=1, progress=False)
    np.testing.assert_array_equal(again.X.toarray(), x)
    other = loaded.generate(test, n_cells=5, n_steps=4, seed=2, progress=False)
    assert not np.array_equal(other.obsm["X_phenoseq"], gen.obsm["X_phenoseq"])


def test_resume_equals_uninterrupted(tmp_path, files):
    """Killed at diffusion step 4 (a checkpoint), the resumed run executes exactly the steps
    that were left (diffusion 5-8, no autoencoder step) and ends with the uninterrupted run's
    weights. Weight equality alone cannot tell a resume from a silent restart (training is
    deterministic), so the steps each run executes are recorded too."""
    torch.set_num_threads(1)
    cfg = fast(ae_steps=4, max_steps=8, checkpoint_every=4)
    steps: list[tuple[str, int]] = []
    full = train_model(inputs(files), tmp_path / "full", SMALL, cfg, progress=False,
                       on_step=lambda phase, step: steps.append((phase, step)))  # fmt: skip
    every = [("autoencoder", s) for s in range(1, 5)] + [("diffusion", s) for s in range(1, 9)]
    assert steps == every

    class Killed(Exception):
        pass

    def kill(phase: str, step: int) -> None:
        steps.append((phase, step))
        if phase == "diffusion" and step == 4:
            raise Killed

    steps.clear()
    with pytest.raises(Killed):
        train_model(inputs(files), tmp_path / "resumed", SMALL, cfg, progress=False, on_step=kill)
    assert steps == every[:8]  # killed right after the step-4 checkpoint
    assert not (tmp_path / "resumed").exists() and (tmp_path / ".resumed.checkpoint").exists()
    steps.clear()
    resumed = train_model(inputs(files), tmp_path / "resumed", SMALL, cfg, resume=True,
                          progress=False, on_step=lambda p, s: steps.append((p, s)))  # fmt: skip
    assert steps == every[8:], "the resumed run must execute exactly the remaining steps"
    # the history records the same steps (its running loss restarts with the resumed process)
    assert [r["step"] for r in resumed.history["diffusion"]] == [3, 6, 8]
    assert [r["step"] for r in full.history["diffusion"]] == [3, 6, 8]
    for (k, a), (_, b) in zip(full.diffusion.state_dict().items(),
                              resumed.diffusion.state_dict().items(), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_continuous_profiles_one_per_group(tmp_path):
    """A CMEA-like treatment-level table: one continuous profile per group."""
    rng = np.random.default_rng(0)
    n = 24
    obs = pd.DataFrame(
        {"Sample_ID": [f"cmp{i}" for i in range(n)]}, index=[f"p{i}" for i in range(n)]
    )
    state = rng.normal(size=(n, 3))
    morph = ad.AnnData(np.tanh(state @ rng.normal(size=(3, 6))).astype(np.float32), obs=obs,
                       var=pd.DataFrame(index=[f"Cells_F{j}" for j in range(6)]))  # fmt: skip
    expr = ad.AnnData((state @ rng.normal(size=(3, 9))).astype(np.float32), obs=obs.copy(),
                      var=pd.DataFrame(index=[f"G{j}" for j in range(9)]))  # fmt: skip
    morph.write_h5ad(tmp_path / "m.h5ad")
    expr.write_h5ad(tmp_path / "e.h5ad")
    cfg = InputConfig(tmp_path / "m.h5ad", tmp_path / "e.h5ad", expression_kind="continuous",
                      split=SplitConfig("treatment", test=("cmp0", "cmp1")))  # fmt: skip
    model = train_model(cfg, tmp_path / "model", SMALL, fast(set_size=1), progress=False)
    gen = model.generate(morph[:2].copy(), n_cells=3, n_steps=3, progress=False)
    assert gen.shape == (6, 9) and "log1p" not in gen.layers
    assert np.isfinite(gen.X).all()
    # pseudo-bulks are kept in the analysis view (the values), not the standardised one
    train = [i for i, r in enumerate(model.registry.group_roles) if r == "train"]
    names = [model.registry.group_names[i] for i in train]
    by_name = dict(zip(expr.obs["Sample_ID"], np.asarray(expr.X), strict=True))
    np.testing.assert_allclose(model.group_stats["pseudobulk"][train],
                               np.vstack([by_name[n] for n in names]), atol=1e-4)  # fmt: skip
    # anchored: the mean of a well's generated profiles is the mean head's gene-space
    # prediction (kernel ridge on the training profiles), however short the training
    head = model.mean_head
    z = head.represent(model.normalize_features(morph[:2].copy()))
    want = head.predict(z, model.group_stats["pseudobulk"].astype(np.float64))
    got = np.vstack([np.asarray(gen.X)[i * 3 : i * 3 + 3].mean(axis=0) for i in range(2)])
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_obsm_embedding_target(tmp_path, files):
    expr = ad.read_h5ad(files[1])
    expr.obsm["X_scgpt"] = np.random.default_rng(0).normal(size=(expr.n_obs, 6)).astype(np.float32)
    expr.write_h5ad(tmp_path / "emb.h5ad")
    cfg = inputs((files[0], tmp_path / "emb.h5ad"), expression_obsm="X_scgpt")
    model = train_model(cfg, tmp_path / "model", SMALL, fast(), progress=False)
    gen = model.generate(ad.read_h5ad(files[0])[:8].copy(), n_cells=2, n_steps=3, progress=False)
    assert gen.shape == (2, 6) and gen.var_names[0] == "X_scgpt_0"


def test_cli_train_generate_and_refusals(tmp_path, files, capsys):
    m, e = files
    main(["train", "--morphology", str(m), "--expression", str(e), "--out", str(tmp_path / "md"),
          "--split", "replicate", "--test", "3", "--max-steps", "4", "--ae-steps", "4",
          "--batch-size", "8", "--set-size", "3", "--n-latent", "4"])  # fmt: skip
    main(["generate", "--model", str(tmp_path / "md"), "--morphology", str(m), "--n-cells", "2",
          "--steps", "3", "--out", str(tmp_path / "g.h5ad")])  # fmt: skip
    g = ad.read_h5ad(tmp_path / "g.h5ad")
    assert g.n_obs == 2 * 9 and g.uns["phenoseq"]["n_steps"] == 3
    # a morphology with different features is refused, and nothing is written
    morph = ad.read_h5ad(m)
    morph.var_names = [f"Cells_X{j}" for j in range(morph.n_vars)]
    morph.write_h5ad(tmp_path / "other.h5ad")
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--model", str(tmp_path / "md"), "--morphology",
              str(tmp_path / "other.h5ad"), "--out", str(tmp_path / "g2.h5ad")])  # fmt: skip
    assert exc.value.code == 2 and "features" in capsys.readouterr().err
    assert not (tmp_path / "g2.h5ad").exists()
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--model", str(tmp_path / "nomodel"), "--morphology", str(m),
              "--out", str(tmp_path / "g3.h5ad")])  # fmt: skip
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "variant",
    [{"condition": "set"}, {"mean_head": "none"}, {"mean_head": "krr"}, {"residual": False}],
)
def test_design_variants_train_generate_reload(tmp_path, files, variant):
    """Every design bench/design.py ablates trains, generates and reloads identically; residual
    generation is on only with a mean head to add the mean back."""
    from dataclasses import replace

    from phenoseq.config import MeanHeadConfig

    torch.set_num_threads(1)
    kind = variant.pop("mean_head", "mixture")
    cfg = replace(SMALL, mean_head=MeanHeadConfig(kind=kind), **variant)
    model = train_model(inputs(files), tmp_path / "model", cfg, fast(), progress=False)
    head = cfg.condition == "group" and kind != "none"
    assert (model.mean_head is not None) == head
    assert model.generates_residuals == (head and cfg.residual)
    morph = ad.read_h5ad(files[0])
    test = morph[morph.obs["Replicate"] == "3"].copy()
    gen = model.generate(test, n_cells=4, n_steps=3, seed=0, progress=False)
    assert gen.shape == (12, 7) and np.isfinite(gen.obsm["X_phenoseq"]).all()
    again = PhenoSeqModel.load(tmp_path / "model").generate(test, n_cells=4, n_steps=3, seed=0,
                                                            progress=False)  # fmt: skip
    np.testing.assert_array_equal(again.obsm["X_phenoseq"], gen.obsm["X_phenoseq"])
