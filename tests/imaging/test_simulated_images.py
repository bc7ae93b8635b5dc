"""The simulator's rendered wells go through `phenoseq featurize` into training-ready morphology."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from phenoseq.config import InputConfig
from phenoseq.data import SplitConfig, load_paired
from phenoseq.demo import SIM_CHANNEL_MAP as SIM_MAP
from phenoseq.demo import SIM_PATTERN
from phenoseq.imaging.featurize import FeaturizeConfig, featurize_images
from phenoseq.imaging.segment import SegmentConfig, object_f1, segment
from phenoseq.simulate import SimulatorConfig, simulate


@pytest.fixture(scope="module")
def sim_images(tmp_path_factory):
    cfg = SimulatorConfig(seed=3, n_treatments=9, n_morphology_cells=24, n_expression_cells=20,
                          n_truth_cells=10, n_genes=50, write_images=True)  # fmt: skip
    return simulate(tmp_path_factory.mktemp("sim") / "s", cfg), cfg


def test_every_sample_has_its_fields_and_a_platemap(sim_images):
    out, cfg = sim_images
    import pandas as pd

    pm = pd.read_csv(out / "images" / "platemap.tsv", sep="\t")
    pngs = list((out / "images").glob("*.png"))
    assert len(pngs) == len(pm) * cfg.n_sites * 5
    assert {"plate", "well", "Sample_ID", "Treatment", "Replicate"} <= set(pm.columns)


def test_segmentation_of_simulated_fields_matches_their_ground_truth(sim_images):
    out, _ = sim_images
    group = zarr.open_group(str(out / "fields.zarr"), mode="r")
    cfg = SegmentConfig.for_nucleus_diameter(24, discard_border=False)
    f1_n, f1_c = [], []
    for i in range(group["images"].shape[0]):
        n, c, _ = segment(np.asarray(group["images"][i], np.float32) / 255, cfg)
        f1_n.append(object_f1(n, np.asarray(group["nuclei"][i]))["f1"])
        f1_c.append(object_f1(c, np.asarray(group["cells"][i]))["f1"])
    assert np.mean(f1_n) >= 0.9 and np.mean(f1_c) >= 0.8  # measured: 0.98 / 0.91 (seed 0)


def test_featurized_wells_pair_with_expression(sim_images, tmp_path):
    out, cfg = sim_images
    morph = tmp_path / "morphology.h5ad"
    adata = featurize_images(
        morph, out / "images", SIM_MAP, pattern=SIM_PATTERN,
        platemap=out / "images" / "platemap.tsv", scheduler="inprocess", progress=False,
        config=FeaturizeConfig(segment=SegmentConfig.for_nucleus_diameter(24)),
    )  # fmt: skip
    n_samples = adata.obs["Metadata_Sample_ID"].nunique()
    wells = adata.obs[["Metadata_Plate", "Metadata_Well"]].astype(str).drop_duplicates()
    assert n_samples == len(wells)
    per_sample = adata.obs.groupby("Metadata_Sample_ID", observed=True).size()
    # cells touching a field's border are dropped, as CellProfiler does
    assert per_sample.median() >= 0.6 * cfg.n_morphology_cells
    paired = load_paired(InputConfig(morph, out / "expression.h5ad", control="DMSO",
                                     split=SplitConfig("replicate", test=("4",))))  # fmt: skip
    assert len(paired.shared) == n_samples
