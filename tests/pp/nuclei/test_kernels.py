"""The Numba kernels equal skimage on random label images and on a real H&E crop."""

import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.color import rgb2hed
from skimage.measure import label, perimeter, regionprops, regionprops_table
from skimage.morphology import skeletonize

from sthisto.pp import nuclei
from sthisto.pp.nuclei import hematoxylin, measure

from ._nuclei_data import CROP_MPP, crop_rgb

PROPS = ("label", "area", "perimeter", "centroid", "bbox", "axis_major_length",
         "axis_minor_length", "eccentricity", "orientation", "extent")
EXACT = {"area": "area", "perimeter": "perimeter", "extent": "extent", "bbox_y0": "bbox-0",
         "bbox_x0": "bbox-1", "bbox_y1": "bbox-2", "bbox_x1": "bbox-3",
         "centroid_y": "centroid-0", "centroid_x": "centroid-1"}
CONVEX = ("convex_area", "solidity", "convex_perimeter", "skeleton_length")
CLOSE = {"major_axis": "axis_major_length", "minor_axis": "axis_minor_length",
         "eccentricity": "eccentricity"}


def _convex_reference(labels):
    """skimage per object: convex area, solidity, perimeter of image_convex, skeleton pixels."""
    return np.array([[p.area_convex, p.solidity, perimeter(p.image_convex), np.count_nonzero(skeletonize(p.image))]
                     for p in regionprops(labels)]).reshape(-1, 4)


def _compare(labels):
    ours = measure(labels)
    ref = regionprops_table(labels, properties=PROPS)
    np.testing.assert_array_equal(ours["label"].to_numpy(), ref["label"])
    convex = _convex_reference(labels)
    for j, col in enumerate(CONVEX):
        # integers (area, skeleton pixels) and their ratio equal; perimeter up to summation order
        np.testing.assert_allclose(ours[col].to_numpy(), convex[:, j], rtol=1e-12, atol=0, err_msg=col)
    for col, rcol in EXACT.items():
        # identical up to the last bits of a float sum (area and bbox are integers: equal)
        np.testing.assert_allclose(ours[col].to_numpy(), ref[rcol], rtol=1e-12, atol=0, err_msg=col)
    for col, rcol in CLOSE.items():
        np.testing.assert_allclose(ours[col].to_numpy(), ref[rcol], rtol=1e-6, atol=1e-9, err_msg=col)
    # orientation is only defined modulo pi for elongated objects: compare the doubled angle
    t_ours, t_ref = ours["orientation"].to_numpy(), ref["orientation"]
    np.testing.assert_allclose(np.cos(2 * t_ours), np.cos(2 * t_ref), atol=1e-6)
    np.testing.assert_allclose(np.sin(2 * t_ours), np.sin(2 * t_ref), atol=1e-6)
    return ours


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blobs_match_regionprops(seed):
    rng = np.random.default_rng(seed)
    mask = ndi.gaussian_filter(rng.random((220, 260)), 2.5) > 0.5
    labels = label(mask)
    assert labels.max() > 20
    _compare(labels)


@pytest.mark.parametrize("seed", range(6))
def test_convex_and_skeleton_on_varied_shapes(seed):
    """Thin diagonal, concave, one-pixel, split and image-edge objects: hull equals skimage's."""
    rng = np.random.default_rng(10 + seed)
    sigma = (1.0, 1.5, 3.0)[seed % 3]
    field = ndi.gaussian_filter(rng.random((120, 140)), (sigma, 3 * sigma) if seed % 2 else sigma)
    labels = label(field > np.quantile(field, 0.55))
    labels[rng.random(labels.shape) < 0.002] = labels.max() + 1  # a scattered, disconnected label
    yy, xx = np.mgrid[:120, :140]
    labels[np.abs(yy - 0.37 * xx - 20) < 0.6] = labels.max() + 1  # a one-pixel-wide slanted line
    table = _compare(labels)
    assert (table["solidity"] <= 1).all() and (table["convex_area"] >= table["area"]).all()


def test_convex_features_of_simple_shapes():
    labels = np.zeros((12, 12), dtype=np.int32)
    labels[1:4, 1:4] = 1  # square: its own hull
    labels[6, 6] = 2  # a single pixel
    labels[8:11, 1:8] = 3
    labels[9, 3:6] = 0  # a rectangle with a hole in the middle row: hull fills it
    t = measure(labels).set_index("label")
    assert t.loc[1, "convex_area"] == 9 and t.loc[1, "solidity"] == 1.0
    assert t.loc[1, "convex_perimeter"] == t.loc[1, "perimeter"]
    assert t.loc[2, "convex_area"] == 1 and t.loc[2, "skeleton_length"] == 1
    assert t.loc[3, "convex_area"] == 21 and t.loc[3, "solidity"] == pytest.approx(18 / 21)


def test_touching_noise_labels_match_regionprops():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, (90, 70))  # touching labels, split components, image edges
    ours = _compare(labels)
    assert len(ours) == 5


def test_sparse_ids_and_dtypes():
    rng = np.random.default_rng(4)
    base = label(ndi.gaussian_filter(rng.random((120, 120)), 2) > 0.52)
    ids = np.array([0, *rng.permutation(np.unique(rng.integers(1, 10**9, 3 * base.max())))[: base.max()]])
    sparse = ids[base].astype(np.int64)  # huge, non-contiguous ids -> compaction path
    a, b = measure(base.astype(np.uint16)), measure(sparse)
    np.testing.assert_array_equal(np.sort(b["label"]), np.sort(ids[1:]))
    order = np.argsort(ids[1:])  # b is sorted by the new ids
    np.testing.assert_allclose(b[["area", "perimeter", "major_axis"]].to_numpy(),
                               a[["area", "perimeter", "major_axis"]].to_numpy()[order])


def test_real_crop_matches_regionprops():
    labels = nuclei.segment_tile(crop_rgb(), microns_per_pixel=CROP_MPP)
    assert labels.max() > 100
    table = _compare(labels)
    np.testing.assert_allclose(table["circularity"], 4 * np.pi * table["area"] / table["perimeter"] ** 2)
    np.testing.assert_allclose(table["aspect_ratio"], table["major_axis"] / table["minor_axis"])


def test_offset_and_empty():
    labels = np.zeros((5, 5), dtype=np.int32)
    assert len(measure(labels)) == 0
    labels[1:3, 2:4] = 7
    t = measure(labels, offset=(100, 1000))
    assert t.loc[0, "centroid_y"] == 101.5 and t.loc[0, "centroid_x"] == 1002.5
    assert (t.loc[0, "bbox_y0"], t.loc[0, "bbox_x1"]) == (101, 1004)
    assert t.loc[0, "extent"] == 1.0 and t.loc[0, "area"] == 4


def test_bad_label_images():
    with pytest.raises(ValueError, match="2-D"):
        measure(np.zeros((3, 3, 3), dtype=int))
    with pytest.raises(ValueError, match="integers"):
        measure(np.zeros((3, 3), dtype=float))
    with pytest.raises(ValueError, match="negative"):
        measure(-np.ones((3, 3), dtype=int))


def test_hematoxylin_equals_rgb2hed():
    rgb = crop_rgb()[:64, :64]
    np.testing.assert_allclose(hematoxylin(rgb), rgb2hed(rgb)[..., 0], atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        hematoxylin(rgb.astype(np.float32))
