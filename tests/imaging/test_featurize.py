"""`phenoseq featurize` end to end: outputs, error isolation, atomicity, Dask, real fields."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from tests.conftest import shared_path
from tests.imaging.test_imaging_segment import synthetic_field

from phenoseq.cli import main
from phenoseq.data import read_morphology
from phenoseq.errors import InputError
from phenoseq.imaging.featurize import FeaturizeConfig, featurize, featurize_images
from phenoseq.imaging.fields import CHANNELS, discover_fields
from phenoseq.imaging.segment import SegmentConfig

CMAP = "DNA=_DNA,ER=_ER,RNA=_RNA,AGP=_AGP,Mito=_Mito"
PATTERN = r"(?P<plate>P\d)_(?P<well>[A-H]\d\d)_s(?P<site>\d)"
CONFIG = FeaturizeConfig(segment=SegmentConfig.for_nucleus_diameter(20))


def write_fields(folder, names=("P1_A01_s1", "P1_A01_s2", "P1_B02_s1")):
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        img, _, _ = synthetic_field(seed=k)
        for c, ch in enumerate(CHANNELS):
            tifffile.imwrite(folder / f"{name}_{ch}.tiff", (img[c] * 65535).astype(np.uint16))
    return folder


def test_featurize_writes_features_crops_masks_and_joins_the_platemap(tmp_path):
    write_fields(tmp_path / "img")
    pd.DataFrame({"plate": ["P1", "P1"], "well_position": ["A01", "B02"],
                  "Treatment": ["DMSO", "cmpA"]}).to_csv(tmp_path / "pm.tsv", sep="\t",
                                                         index=False)  # fmt: skip
    out = tmp_path / "out" / "m.h5ad"
    adata = featurize_images(out, tmp_path / "img", CMAP, pattern=PATTERN, config=CONFIG,
                             platemap=tmp_path / "pm.tsv", save_masks=tmp_path / "masks",
                             progress=False)  # fmt: skip
    assert adata.n_obs == 36  # 12 synthetic cells per field
    assert adata.obs.groupby("Metadata_Well", observed=True).size().to_dict() == {
        "A01": 24,
        "B02": 12,
    }
    assert set(adata.obs.loc[adata.obs.Metadata_Well == "B02", "Metadata_Treatment"]) == {"cmpA"}
    assert not any("Location" in v for v in adata.var_names)
    assert np.isfinite(adata.X).all()
    back = read_morphology(out)
    assert list(back.var_names) == list(adata.var_names)
    crops = zarr.open_array(str(out.with_name("m.crops.zarr")), path="crops", mode="r")
    assert crops.shape == (36, 5, 64, 64)
    assert (adata.obs["Metadata_CropIndex"].to_numpy() == np.arange(36)).all()
    masks = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert masks[:2] == ["P1_A01_1_cells.tiff", "P1_A01_1_nuclei.tiff"] and len(masks) == 6


def test_a_corrupt_field_is_skipped_and_counted(tmp_path):
    folder = write_fields(tmp_path / "img")
    (folder / "P1_B02_s1_ER.tiff").write_bytes(b"not a tiff")
    adata = featurize_images(tmp_path / "m.h5ad", folder, CMAP, pattern=PATTERN, config=CONFIG,
                             progress=False)  # fmt: skip
    info = adata.uns["phenoseq"]["featurize"]
    assert info["n_fields"] == 3 and info["n_fields_done"] == 2
    assert list(info["failed_fields"]) == ["P1_B02_1"]
    assert "P1_B02_s1_ER.tiff" in info["failed_fields"]["P1_B02_1"]
    assert adata.n_obs == 24


def test_every_field_failing_is_an_error_and_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "img"
    folder.mkdir()
    for ch in CHANNELS:  # blank fields: no cells
        tifffile.imwrite(folder / f"P1_A01_s1_{ch}.tiff", np.zeros((64, 64), np.uint16))
    out = tmp_path / "m.h5ad"
    with pytest.raises(SystemExit) as exc:
        main(["featurize", "--images", str(folder), "--channel-map", CMAP, "--out", str(out)])
    assert exc.value.code == 2
    assert "every field failed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [folder]  # no h5ad, no crops, no temporary folder


def test_dask_local_cluster_gives_the_in_process_result(tmp_path):
    pytest.importorskip("dask.distributed")
    fields = discover_fields(write_fields(tmp_path / "img"), CMAP, PATTERN)
    from dask.distributed import LocalCluster

    a = featurize(fields, CONFIG, scheduler="inprocess", progress=False)
    b = featurize(fields, CONFIG, scheduler="local", n_workers=2, progress=False)
    np.testing.assert_array_equal(a.X, b.X)
    pd.testing.assert_frame_equal(a.obs, b.obs)
    # a running cluster, reached by its address (as --scheduler tcp://host:port)
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        c = featurize(fields, CONFIG, scheduler=cluster.scheduler_address, progress=False)
    np.testing.assert_array_equal(a.X, c.X)
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        featurize(fields, CONFIG, scheduler="tcp://127.0.0.1:1", progress=False)


def test_config_file_and_flags(tmp_path):
    (tmp_path / "f.toml").write_text('nucleus_diameter = 20\ncell_channel = "ER"\n'
                                      'feature_set = "fast"\n')  # fmt: skip
    from phenoseq.imaging.featurize import read_config

    cfg = FeaturizeConfig.from_dict(read_config(tmp_path / "f.toml"))
    assert cfg.segment.cell_channel == "ER" and cfg.segment.min_nucleus_area == 50
    with pytest.raises(InputError, match="unknown featurize setting"):
        FeaturizeConfig.from_dict({"nucleus_size": 3})
    with pytest.raises(InputError, match="not a channel"):
        FeaturizeConfig.from_dict({"cell_channel": "Actin"})


@pytest.mark.parametrize(
    ("folder", "cmap"),
    [
        ("bbbc022-u2os-field", r"DNA=w1.*\.png,ER=w2,RNA=w3,AGP=w4,Mito=w5"),
        ("cdrp-u2os-field-cloome",
         r"DNA=Hoechst,ER=ERSyto\.,RNA=ERSytoBleed,AGP=Ph_golgi,Mito=Mito"),
    ],
)  # fmt: skip
def test_real_u2os_fields_featurize_with_finite_features(tmp_path, folder, cmap):
    images = shared_path(folder)
    out = tmp_path / "m.h5ad"
    main(["featurize", "--images", str(images), "--channel-map", cmap, "--out", str(out)])
    adata = ad.read_h5ad(out)
    assert adata.n_obs >= 30 and adata.n_vars > 200
    assert np.isfinite(adata.X).all()
