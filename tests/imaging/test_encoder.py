"""The crop encoder: learns treatment-discriminative embeddings, saves/reloads, CLI contract."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from skimage import draw
from tests.imaging.test_featurize import CMAP, PATTERN, write_fields

from phenoseq.cli import main
from phenoseq.errors import InputError
from phenoseq.imaging.encoder import (
    CropEncoder,
    EncoderConfig,
    embed,
    load_encoder,
    save_encoder,
    train_encoder,
)
from phenoseq.imaging.featurize import FeaturizeConfig, featurize_images
from phenoseq.imaging.segment import SegmentConfig

FAST = EncoderConfig(n_embedding=8, width=8, epochs=40, batch_size=16, lr=3e-3)


def crops_of_two_kinds(n=96, seed=0):
    """Class 0: round nuclei; class 1: elongated nuclei (same intensity), random positions."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 5, 32, 32), np.float32)
    y = np.arange(n) % 2
    for i in range(n):
        cy, cx = rng.integers(12, 20, 2)
        r = (6, 6) if y[i] == 0 else (9, 3)
        rr, cc = draw.ellipse(cy, cx, *r, shape=(32, 32), rotation=rng.uniform(0, np.pi))
        x[i, 0, rr, cc] = 0.8
        x[i, 1:] = 0.1 + 0.02 * rng.standard_normal((4, 32, 32))
    return x, np.array(["round", "long"])[y]


def test_encoder_learns_shape_and_generalises_to_held_out_rows():
    x, y = crops_of_two_kinds()
    train = np.arange(len(x)) < 64
    model, hist = train_encoder(x, y, train, FAST, progress=False)
    assert hist["train_accuracy"] >= 0.9
    assert hist["heldout_accuracy"] >= 0.8  # 32 crops never seen in training
    emb = embed(x, model, progress=False)
    assert emb.shape == (96, 8) and np.isfinite(emb).all()


def test_saved_encoder_reloads_to_identical_embeddings(tmp_path):
    torch.manual_seed(0)
    model = CropEncoder(5, 8, 8).eval()
    x, _ = crops_of_two_kinds(8)
    save_encoder(model, tmp_path / "e.safetensors", FAST)
    back, cfg = load_encoder(tmp_path / "e.safetensors")
    assert cfg == FAST
    np.testing.assert_array_equal(embed(x, model, progress=False), embed(x, back, progress=False))
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a PhenoSeq crop encoder"):
        load_encoder(tmp_path / "bad.safetensors")


def test_training_needs_two_treatments_among_training_rows():
    x, y = crops_of_two_kinds(16)
    with pytest.raises(InputError, match="at least two treatments"):
        train_encoder(x, y, y == "round", FAST, progress=False)


def test_embed_command_adds_obsm_and_reuses_its_encoder(tmp_path):
    write_fields(tmp_path / "img", names=("P1_A01_s1", "P1_A01_s2", "P1_B02_s1", "P1_B02_s2"))
    pd.DataFrame({"well_position": ["A01", "B02"], "Treatment": ["DMSO", "cmpA"],
                  "Replicate": ["1", "2"]}).to_csv(tmp_path / "pm.tsv", sep="\t",
                                                   index=False)  # fmt: skip
    morph = tmp_path / "m.h5ad"
    featurize_images(morph, tmp_path / "img", CMAP, pattern=PATTERN, platemap=tmp_path / "pm.tsv",
                     config=FeaturizeConfig(segment=SegmentConfig.for_nucleus_diameter(20)),
                     progress=False)  # fmt: skip
    out = tmp_path / "e.h5ad"
    main(["embed", "--morphology", str(morph), "--out", str(out), "--epochs", "2", "--dim", "8"])
    a = ad.read_h5ad(out)
    assert a.obsm["X_cnn"].shape == (a.n_obs, 8)
    assert a.obsm["X_features_cnn"].shape == (a.n_obs, a.n_vars + 8)
    again = tmp_path / "again.h5ad"
    main(["embed", "--morphology", str(morph), "--out", str(again), "--encoder",
          str(tmp_path / "e.encoder.safetensors")])  # fmt: skip
    np.testing.assert_allclose(ad.read_h5ad(again).obsm["X_cnn"], a.obsm["X_cnn"], rtol=1e-5)
    with pytest.raises(SystemExit):  # holding out every row of one of the two treatments
        main(["embed", "--morphology", str(morph), "--out", str(tmp_path / "x.h5ad"),
              "--holdout-key", "Metadata_Replicate", "--holdout", "2"])  # fmt: skip
    with pytest.raises(SystemExit):
        main(["embed", "--morphology", str(morph), "--out", str(tmp_path / "x.h5ad"),
              "--crops", str(tmp_path / "missing.zarr")])  # fmt: skip
    assert not (tmp_path / "x.h5ad").exists()


def test_external_embeddings_attach_by_file(tmp_path):
    write_fields(tmp_path / "img", names=("P1_A01_s1",))
    morph = tmp_path / "m.h5ad"
    adata = featurize_images(
        morph,
        tmp_path / "img",
        CMAP,
        pattern=PATTERN,
        progress=False,
        config=FeaturizeConfig(segment=SegmentConfig.for_nucleus_diameter(20)),
    )
    emb = np.arange(adata.n_obs * 3, dtype=np.float32).reshape(-1, 3)
    table = pd.DataFrame(emb, columns=["a", "b", "c"])
    table["Metadata_CropIndex"] = adata.obs["Metadata_CropIndex"].to_numpy()
    table.iloc[::-1].to_parquet(tmp_path / "e.parquet")  # rows in any order
    main(["embed", "--morphology", str(morph), "--out", str(tmp_path / "x.h5ad"),
          "--external", str(tmp_path / "e.parquet")])  # fmt: skip
    np.testing.assert_array_equal(ad.read_h5ad(tmp_path / "x.h5ad").obsm["X_external"], emb)
    np.save(tmp_path / "bad.npy", emb[:-1])
    with pytest.raises(SystemExit):
        main(["embed", "--morphology", str(morph), "--out", str(tmp_path / "y.h5ad"),
              "--external", str(tmp_path / "bad.npy")])  # fmt: skip
    assert not (tmp_path / "y.h5ad").exists()
