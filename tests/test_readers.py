"""Every accepted input layout, read from the real files in ../shared/data with asserted values."""

from __future__ import annotations

import shutil
import sqlite3

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from phenoseq.data import pair_by_treatment, read_expression, read_morphology
from phenoseq.data.features import infer_features
from phenoseq.errors import InputError

JUMP = "jump-target2-single-cell"
PLATEMAP = "JUMP-Target-2_compound_platemap.tsv"


def test_cellprofiler_folder_with_platemap():
    folder = shared_path(JUMP)
    m = read_morphology(folder, platemap=folder / PLATEMAP)
    assert m.obs["Metadata_Well"].value_counts().to_dict() == {"A01": 89, "A02": 36}
    assert m.obs.groupby("Metadata_Well")["Metadata_broad_sample"].first().to_dict() == {
        "A01": "BRD-K09338665-001-07-1",
        "A02": "BRD-K48278478-001-01-2",
    }
    assert m.X.dtype == np.float32 and np.isfinite(m.X).all()
    comps = {v.split("_")[0] for v in m.var_names}
    assert comps == {"Cells", "Cytoplasm", "Nuclei"}
    assert not any("_Location_" in v or "_Parent_" in v for v in m.var_names)
    # joined through Parent_*: the first A01 cell's nucleus area is the Nuclei table's first row
    nuclei = pd.read_csv(folder / "BR00121431-A01-1_Nuclei.csv")
    cyto = pd.read_csv(folder / "BR00121431-A01-1_Cytoplasm.csv")
    parent = cyto.loc[0, "Parent_Nuclei"]
    expected = nuclei.set_index("ObjectNumber").loc[parent, "AreaShape_Area"]
    assert m.obs_vector("Nuclei_AreaShape_Area")[0] == pytest.approx(expected)
    assert m.obs["Metadata_Site"].astype(int).eq(1).all()


def _to_cytominer_sqlite(folder, path):
    """A cytominer-database style SQLite: compartment-prefixed columns plus TableNumber."""
    con = sqlite3.connect(path)
    for comp in ("Image", "Cells", "Cytoplasm", "Nuclei"):
        frames = []
        for t, well in enumerate(("A01", "A02")):
            df = pd.read_csv(folder / f"BR00121431-{well}-1_{comp}.csv")
            if comp != "Image":  # keep the fixture small: ids, parents and 150 measurements
                keep = [
                    c
                    for c in df.columns
                    if c in ("ImageNumber", "ObjectNumber") or c.startswith("Parent_")
                ] + list(df.columns[2:152])
                df = df[list(dict.fromkeys(keep))]
                df = df.rename(
                    columns={
                        c: f"{comp}_{c}"
                        for c in df.columns
                        if c not in ("ImageNumber", "ObjectNumber")
                    }
                )
            df.insert(0, "TableNumber", t)
            frames.append(df)
        pd.concat(frames).to_sql(comp, con, index=False)
    con.close()


def test_sqlite_matches_csv_folder(tmp_path):
    folder = shared_path(JUMP)
    db = tmp_path / "plate.sqlite"
    _to_cytominer_sqlite(folder, db)
    m = read_morphology(db, platemap=folder / PLATEMAP)
    ref = read_morphology(folder)
    assert m.n_obs == 125
    assert m.obs["Metadata_Well"].value_counts().to_dict() == {"A01": 89, "A02": 36}
    common = [v for v in m.var_names if v in ref.var_names]
    assert len(common) > 100
    np.testing.assert_allclose(m[:, common].X, ref[:, common].X, rtol=1e-6)


def test_loaddata_style_image_table(tmp_path):
    folder = shared_path(JUMP)
    for comp in ("Cells", "Cytoplasm", "Nuclei"):
        shutil.copy(folder / f"BR00121431-A02-1_{comp}.csv", tmp_path / f"run_{comp}.csv")
    image_number = pd.read_csv(tmp_path / "run_Cells.csv")["ImageNumber"].iloc[0]
    pd.DataFrame(
        {
            "ImageNumber": [image_number],
            "Metadata_Plate": ["BR00121431"],
            "Metadata_Well": ["A02"],
            "Metadata_Site": [1],
            "FileName_OrigDNA": ["r01c02f01p01-ch5sk1fk1fl1.tiff"],
            "PathName_OrigDNA": ["/images"],
        }
    ).to_csv(tmp_path / "run_Image.csv", index=False)
    m = read_morphology(tmp_path, platemap=folder / PLATEMAP)
    assert m.n_obs == 36
    assert set(m.obs["Metadata_broad_sample"]) == {"BRD-K48278478-001-01-2"}


@pytest.mark.parametrize("suffix", [".csv.gz", ".parquet"])
def test_profile_table_formats(tmp_path, suffix):
    src = shared_path(
        "lincs-cellpainting-a549-plate", "SQ00015054_normalized_feature_select.csv.gz"
    )
    m = read_morphology(src)
    assert m.shape == (384, 454)
    assert (m.obs["Metadata_broad_sample"] == "DMSO").sum() == 24
    frame = pd.read_csv(src)
    out = tmp_path / f"profiles{suffix}"
    frame.to_parquet(out) if suffix == ".parquet" else frame.to_csv(out, index=False)
    m2 = read_morphology(out)
    np.testing.assert_array_equal(m2.X, m.X)
    assert m2.var_names.tolist() == m.var_names.tolist()


def test_features_override_and_inference():
    src = shared_path(
        "lincs-cellpainting-a549-plate", "SQ00015054_normalized_feature_select.csv.gz"
    )
    m = read_morphology(
        src, features=["Cells_AreaShape_Compactness", "Nuclei_AreaShape_Zernike_0_0"]
    )
    assert m.var_names.tolist() == ["Cells_AreaShape_Compactness", "Nuclei_AreaShape_Zernike_0_0"]
    cols = ["Cells_A", "Nuclei_Parent_Cells", "Cells_Location_Center_X", "Metadata_Well", "X"]
    assert infer_features(cols) == ["Cells_A"]
    assert infer_features(cols, exclude_positional=False) == ["Cells_A", "Cells_Location_Center_X"]


def test_l1000_gct_continuous_only():
    gct = shared_path("cmap-l1000-ljp005-a375", "test_l1000.gct")
    e = read_expression(gct, kind="continuous")
    assert e.shape == (377, 978)
    assert "pert_iname" in e.obs and e.obs["pert_iname"].nunique() == 60
    assert 3.0 < float(e.X.min()) and float(e.X.max()) < 15.5
    with pytest.raises(InputError, match="non-integer"):
        read_expression(gct, kind="counts")


def test_glioblastoma_counts():
    h5 = shared_path("glioblastoma-panobinostat-lemur", "glioblastoma_example_data.h5ad")
    e = read_expression(h5)
    assert e.shape == (5000, 300)
    assert float(e.X.sum()) == 5_981_290
    assert e.uns["phenoseq"]["expression_kind"] == "counts"
    with pytest.raises(InputError, match="non-integer"):
        read_expression(h5, layer="logcounts")


def test_pbmc_refused_as_counts_accepted_as_continuous():
    h5 = shared_path("scanpy-pbmc68k-reduced", "10x_pbmc68k_reduced.h5ad")
    with pytest.raises(InputError, match="negative value"):
        read_expression(h5)
    e = read_expression(h5, kind="continuous")
    assert e.shape == (700, 765)
    emb = read_expression(h5, obsm_key="X_pca")
    assert emb.shape == (700, 50) and emb.uns["phenoseq"]["expression_kind"] == "embedding"


def test_scgenescope_layout_real_pairing_and_replicate_split(tmp_path):
    """Real LINCS wells + real glioblastoma cells in scGeneScope's Sample_ID/Treatment/Replicate."""
    lincs = read_morphology(
        shared_path("lincs-cellpainting-a549-plate", "SQ00015054_normalized_feature_select.csv.gz")
    )
    gbm = read_expression(
        shared_path("glioblastoma-panobinostat-lemur", "glioblastoma_example_data.h5ad")
    )
    patients = sorted(gbm.obs["patient_id"].unique())
    gbm.obs["Treatment"] = np.where(gbm.obs["condition"] == "ctrl", "DMSO", "panobinostat")
    gbm.obs["Replicate"] = [str(patients.index(p) + 1) for p in gbm.obs["patient_id"]]
    gbm.obs["Sample_ID"] = gbm.obs["Treatment"] + "_R" + gbm.obs["Replicate"]
    dmso = lincs.obs["Metadata_broad_sample"] == "DMSO"
    treated = lincs.obs["Metadata_pert_id"] == lincs.obs.loc[~dmso, "Metadata_pert_id"].iloc[0]
    m = lincs[(dmso | treated).to_numpy()].copy()
    m.obs["Treatment"] = np.where(m.obs["Metadata_broad_sample"] == "DMSO", "DMSO", "panobinostat")
    m.obs["Replicate"] = [str(i % 5 + 1) for i in range(m.n_obs)]
    m.obs["Sample_ID"] = m.obs["Treatment"] + "_R" + m.obs["Replicate"]
    m.write_h5ad(tmp_path / "m.h5ad")
    gbm.write_h5ad(tmp_path / "e.h5ad")
    from phenoseq.data import SplitConfig

    paired = pair_by_treatment(
        ad.read_h5ad(tmp_path / "m.h5ad"),
        read_expression(tmp_path / "e.h5ad"),
        control="DMSO",
        split=SplitConfig("replicate", test=("5",), calib=("4",)),
    )
    g = paired.groups
    assert len(paired.shared) == 10
    assert g["n_expression"].sum() == 5000 and (g["n_expression"] == 500).all()
    assert g["n_morphology"].sum() == 24 + 6
    assert g.loc["DMSO_R5", "role"] == "test" and g.loc["panobinostat_R4", "role"] == "calib"
    assert g["is_control"].sum() == 5
    assert paired.split.groups("test") == ["DMSO_R5", "panobinostat_R5"]


def test_validate_cli_on_jump_with_real_counts(tmp_path, capsys):
    """`phenoseq validate` on the JUMP folder + plate map, paired to real glioblastoma counts."""
    import json

    from phenoseq.cli import main

    folder = shared_path(JUMP)
    gbm = read_expression(
        shared_path("glioblastoma-panobinostat-lemur", "glioblastoma_example_data.h5ad")
    )[:200].copy()
    gbm.obs["Metadata_broad_sample"] = ["BRD-K09338665-001-07-1"] * 120 + [
        "BRD-K48278478-001-01-2"
    ] * 80
    gbm.write_h5ad(tmp_path / "e.h5ad")
    out = tmp_path / "summary.json"
    main(["validate", "--morphology", str(folder), "--platemap", str(folder / PLATEMAP),
          "--expression", str(tmp_path / "e.h5ad"), "--pair-key", "Metadata_broad_sample",
          "--out", str(out)])  # fmt: skip
    s = json.loads(out.read_text())
    assert s["n_groups_shared"] == 2
    assert s["cells_per_group"]["morphology"] == {"min": 36, "median": 62.5, "max": 89}
    assert s["cells_per_group"]["expression"] == {"min": 80, "median": 100.0, "max": 120}
    assert s["morphology"] == {"n_rows": 125, "n_features": 5613}
    assert "2 shared groups" in capsys.readouterr().out
