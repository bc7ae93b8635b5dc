"""Per-cell measurements against hand-computed values and scikit-image's own implementations."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops
from skimage.measure import regionprops

from phenoseq.imaging.measure import (
    TEXTURE_LEVELS,
    compartments,
    cp_name,
    crops,
    locations,
    measure_cp,
    measure_fast,
)


def two_cells():
    nuclei = np.zeros((40, 60), np.int32)
    cells = np.zeros_like(nuclei)
    cells[5:25, 5:25], nuclei[10:20, 10:20] = 1, 1
    cells[10:35, 30:55], nuclei[15:25, 35:45] = 3, 3  # labels need not be consecutive
    rng = np.random.default_rng(0)
    image = rng.random((5, 40, 60)).astype(np.float32)
    return image, nuclei, cells


def test_shape_and_intensity_match_direct_computation():
    image, nuclei, cells = two_cells()
    f = measure_fast(image, nuclei, cells)
    assert f["ObjectNumber"].tolist() == [1, 3]
    assert f["Nuclei_AreaShape_Area"].tolist() == [100, 100]
    assert f["Cells_AreaShape_Area"].tolist() == [400, 625]
    assert f["Cytoplasm_AreaShape_Area"].tolist() == [300, 525]
    for k, lab in enumerate([1, 3]):
        for c, ch in enumerate(("DNA", "ER", "RNA", "AGP", "Mito")):
            for comp, masks in compartments(nuclei, cells).items():
                v = image[c][masks == lab].astype(np.float64)
                got = f.iloc[k]
                assert got[f"{comp}_Intensity_MeanIntensity_{ch}"] == pytest.approx(v.mean())
                assert got[f"{comp}_Intensity_StdIntensity_{ch}"] == pytest.approx(v.std())
                assert got[f"{comp}_Intensity_IntegratedIntensity_{ch}"] == pytest.approx(v.sum())
                assert got[f"{comp}_Intensity_MedianIntensity_{ch}"] == pytest.approx(np.median(v))
                assert got[f"{comp}_Intensity_LowerQuartileIntensity_{ch}"] == pytest.approx(
                    np.quantile(v, 0.25)
                )
                assert got[f"{comp}_Intensity_MaxIntensity_{ch}"] == pytest.approx(v.max())
    # FormFactor = 4 pi A / P^2 with scikit-image's perimeter estimate
    perimeter = regionprops(nuclei)[0].perimeter
    assert f["Nuclei_AreaShape_FormFactor"].iloc[0] == pytest.approx(4 * np.pi * 100 / perimeter**2)
    assert f["Nuclei_AreaShape_Eccentricity"].iloc[0] == pytest.approx(0.0, abs=1e-6)


def test_texture_of_a_rectangle_matches_skimage_graycoprops():
    """Inside a rectangular object every co-occurring pair is inside the object, so the masked
    co-occurrence equals scikit-image's on the sub-image (same quantisation)."""
    image, nuclei, cells = two_cells()
    f = measure_fast(image, nuclei, cells)
    plane = image[2]
    lo, hi = plane.min(), plane.max()
    q = np.clip(((plane - lo) / (hi - lo) * TEXTURE_LEVELS).astype(np.uint8), 0, TEXTURE_LEVELS - 1)
    glcm = graycomatrix(q[5:25, 5:25], [3], [0], levels=TEXTURE_LEVELS, symmetric=True, normed=True)
    for ours, theirs in (
        ("Contrast", "contrast"),
        ("Correlation", "correlation"),
        ("AngularSecondMoment", "ASM"),
        ("InverseDifferenceMoment", "homogeneity"),
    ):
        want = graycoprops(glcm, theirs)[0, 0]
        assert f[f"Cells_Texture_{ours}_RNA_3_00_{TEXTURE_LEVELS}"].iloc[0] == pytest.approx(want)
    p = glcm[:, :, 0, 0]
    entropy = -(p[p > 0] * np.log2(p[p > 0])).sum()
    assert f[f"Cells_Texture_Entropy_RNA_3_00_{TEXTURE_LEVELS}"].iloc[0] == pytest.approx(entropy)


def test_locations_and_crops():
    image, nuclei, cells = two_cells()
    loc = locations(nuclei, np.array([1, 3]))
    np.testing.assert_allclose(loc.to_numpy(), [[14.5, 14.5], [39.5, 19.5]])
    cut = crops(image, loc[["Nuclei_Location_Center_Y", "Nuclei_Location_Center_X"]].to_numpy(), 8)
    assert cut.shape == (2, 5, 8, 8)
    np.testing.assert_array_equal(cut[0], image[:, 11:19, 11:19])
    edge = crops(image, np.array([[0.0, 0.0]]), 8)  # zero-padded outside the field
    assert (edge[0, :, :4, :] == 0).all() and (edge[0, :, 4:, 4:] == image[:, :4, :4]).all()


def test_cp_names_follow_cellprofiler():
    assert cp_name("Cells", "Intensity_MeanIntensity__DNA") == "Cells_Intensity_MeanIntensity_DNA"
    assert cp_name("Nuclei", "Contrast_3_00_256__RNA") == "Nuclei_Texture_Contrast_RNA_3_00_256"
    assert cp_name("Cells", "Granularity_1__Mito") == "Cells_Granularity_1_Mito"
    assert (cp_name("Cytoplasm", "RadialDistribution_FracAtD_1of4__ER")
            == "Cytoplasm_RadialDistribution_FracAtD_ER_1of4")  # fmt: skip
    assert cp_name("Cells", "Area") == "Cells_AreaShape_Area"


def test_cp_measure_option_agrees_with_the_fast_set_on_shared_features():
    pytest.importorskip("cp_measure")
    image, nuclei, cells = two_cells()
    cp = measure_cp(image, nuclei, cells)
    fast = measure_fast(image, nuclei, cells)
    assert cp["ObjectNumber"].tolist() == [1, 3]
    for col in ("Cells_AreaShape_Area", "Nuclei_Intensity_MeanIntensity_DNA",
                "Cytoplasm_Intensity_IntegratedIntensity_Mito"):  # fmt: skip
        np.testing.assert_allclose(cp[col], fast[col], rtol=1e-5)
    assert np.isfinite(cp.to_numpy(float)).all()
