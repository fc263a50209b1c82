"""Nuclei segmentation: planted nuclei found, tiling-invariant, bounded memory, clear errors."""

import tracemalloc

import numpy as np
import pytest
from scipy.spatial import cKDTree

import sthisto as st
from sthisto.pp import nuclei

from ._nuclei_data import CROP_MPP, crop_adata, crop_rgb

FEATURES = ["area", "perimeter", "major_axis", "minor_axis", "eccentricity", "orientation", "extent",
            "convex_area", "solidity", "convex_perimeter", "skeleton_length"]


def _match(a, b, tol=1e-6):
    """Index pairs of nuclei with the same centroid (within tol px)."""
    d, j = cKDTree(b[["x", "y"]].to_numpy()).query(a[["x", "y"]].to_numpy())
    return np.flatnonzero(d <= tol), j[d <= tol]


def test_planted_nuclei_are_found(synthetic_adata):
    st.pp.segment_nuclei(synthetic_adata, region="all")
    found = synthetic_adata.uns["sthisto_nuclei"]["nuclei"]
    planted = synthetic_adata.uns["sthisto_synthetic"]["nuclei"]
    d, _ = cKDTree(found[["x", "y"]].to_numpy()).query(planted[["x", "y"]].to_numpy())
    assert (d <= 3).mean() >= 0.85
    d_back, _ = cKDTree(planted[["x", "y"]].to_numpy()).query(found[["x", "y"]].to_numpy())
    assert (d_back <= 3).mean() >= 0.85  # few spurious detections
    params = synthetic_adata.uns["sthisto_nuclei"]["params"]
    assert params["method"] == "watershed" and params["threshold"] > 0
    spot = found["spot"].to_numpy()
    assert set(spot) - {""} <= set(synthetic_adata.obs_names)
    # spot assignment agrees with the planted truth for nuclei found near a planted one
    _, j = cKDTree(planted[["x", "y"]].to_numpy()).query(found[["x", "y"]].to_numpy())
    truth = np.where(planted["spot"].to_numpy()[j] >= 0,
                     synthetic_adata.obs_names.to_numpy()[planted["spot"].to_numpy()[j]], "")
    assert (truth == spot)[d_back <= 1].mean() > 0.97


@pytest.mark.parametrize("source", ["crop", "synthetic"])
def test_tiling_gives_the_same_nuclei(source, synthetic_adata):
    if source == "crop":
        img, mpp = crop_rgb(), CROP_MPP
    else:
        img, mpp = synthetic_adata.uns["spatial"]["synthetic"]["images"]["fullres"], 1.0
    thr = nuclei.hematoxylin_threshold(img, microns_per_pixel=mpp)
    one = nuclei.segment_image(img, microns_per_pixel=mpp, tile_size=4096, threshold=thr)
    tiled = nuclei.segment_image(img, microns_per_pixel=mpp, tile_size=128, overlap=48, threshold=thr)
    assert abs(len(tiled) - len(one)) <= 0.01 * len(one)
    i, j = _match(one, tiled)
    assert len(i) >= 0.99 * len(one)
    pd_one, pd_tiled = one.iloc[i][FEATURES].to_numpy(), tiled.iloc[j][FEATURES].to_numpy()
    np.testing.assert_array_equal(pd_one, pd_tiled)
    # nuclei are kept exactly once: no duplicated centroids
    assert len(np.unique(tiled[["x", "y"]].round(6).to_numpy(), axis=0)) == len(tiled)


def test_parallel_backends_and_dask_give_identical_tables(synthetic_adata):
    img = synthetic_adata.uns["spatial"]["synthetic"]["images"]["fullres"]
    kw = {"microns_per_pixel": 1.0, "tile_size": 256, "threshold": 0.06}
    ref = nuclei.segment_image(img, n_jobs=1, **kw)
    threads = nuclei.segment_image(img, n_jobs=2, backend="threads", **kw)
    procs = nuclei.segment_image(img, n_jobs=2, backend="processes", **kw)
    da = pytest.importorskip("dask.array")
    lazy = nuclei.segment_image(da.from_array(img, chunks=(300, 300, 3)), n_jobs=2, **kw)
    for other in (threads, procs, lazy):
        np.testing.assert_array_equal(ref.to_numpy(), other.to_numpy())


def test_labels_path_and_precomputed_labels(synthetic_adata, tmp_path):
    path = tmp_path / "labels.npy"
    st.pp.segment_nuclei(synthetic_adata, region="all", tile_size=300, labels_path=path)
    table = synthetic_adata.uns["sthisto_nuclei"]["nuclei"]
    labels = np.load(path)
    assert synthetic_adata.uns["sthisto_nuclei"]["params"]["labels_path"] == str(path)
    remeasured = nuclei.measure(labels)
    np.testing.assert_array_equal(remeasured["label"], table["id"])
    np.testing.assert_allclose(remeasured[FEATURES].to_numpy(), table[FEATURES].to_numpy())
    # the written label image, given back as `method`, yields the same table
    again = st.pp.segment_nuclei(synthetic_adata, method=labels, region="all", tile_size=256, copy=True)
    t2 = again.uns["sthisto_nuclei"]["nuclei"]
    assert again.uns["sthisto_nuclei"]["params"]["method"] == "labels"
    i, j = _match(table, t2)
    assert len(i) == len(table) == len(t2)
    np.testing.assert_allclose(table.iloc[i][FEATURES].to_numpy(), t2.iloc[j][FEATURES].to_numpy())


def test_callable_method(synthetic_adata):
    calls = []

    def seg(tile):
        calls.append(tile.shape)
        return nuclei.segment_tile(tile, microns_per_pixel=1.0, threshold=0.06)

    out = st.pp.segment_nuclei(synthetic_adata, method=seg, tile_size=512, copy=True)
    assert calls and all(len(s) == 3 for s in calls)
    assert out.uns["sthisto_nuclei"]["params"]["method"] == "callable:seg"
    assert len(out.uns["sthisto_nuclei"]["nuclei"]) > 500
    with pytest.raises(ValueError, match="must return an"):
        st.pp.segment_nuclei(synthetic_adata, method=lambda t: t[:10, :10, 0], copy=True)


def test_watershed_options_with_a_user_segmenter_are_reported(synthetic_adata, caplog):
    def seg(tile):
        return nuclei.segment_tile(tile, microns_per_pixel=1.0, threshold=0.06)

    with caplog.at_level("WARNING", logger="sthisto"):
        st.pp.segment_nuclei(synthetic_adata, method=seg, tile_size=512, copy=True)
    assert "ignored" not in caplog.text
    with caplog.at_level("WARNING", logger="sthisto"):
        st.pp.segment_nuclei(synthetic_adata, method=seg, tile_size=512, min_area_um2=30, copy=True)
    assert "min_area_um2" in caplog.text and "ignored" in caplog.text


def test_only_tiles_near_spots(synthetic_adata):
    sub = synthetic_adata[:5].copy()
    st.pp.segment_nuclei(sub, tile_size=128)
    st.pp.segment_nuclei(synthetic_adata, tile_size=128, key_added="all_spots")
    assert sub.uns["sthisto_nuclei"]["params"]["n_tiles"] < synthetic_adata.uns["all_spots"]["params"]["n_tiles"]
    xy = sub.obsm["spatial"]
    t = sub.uns["sthisto_nuclei"]["nuclei"]
    d, _ = cKDTree(xy).query(t[["x", "y"]].to_numpy())
    assert d.max() < 3 * 27.5 + 128 * 1.5  # nothing from far-away tiles


def test_memory_is_bounded_by_the_tile(tmp_path):
    rgb = crop_rgb()
    big = np.lib.format.open_memmap(tmp_path / "slide.npy", mode="w+", dtype=np.uint8, shape=(2048, 2048, 3))
    for y in range(0, 2048, 512):
        for x in range(0, 2048, 512):
            big[y:y + 512, x:x + 512] = rgb
    big.flush()
    slide = np.load(tmp_path / "slide.npy", mmap_mode="r")
    tracemalloc.start()
    table = nuclei.segment_image(slide, microns_per_pixel=CROP_MPP, tile_size=256, overlap=48)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(table) > 16 * 200
    # one 352x352 tile needs a few MB; the whole 4-MP slide as float64 alone would be 32 MB
    assert peak < 24e6, f"peak traced memory {peak / 1e6:.1f} MB"


def test_real_crop_plausible_count():
    adata = crop_adata()
    st.pp.segment_nuclei(adata, region="all")
    table = adata.uns["sthisto_nuclei"]["nuclei"]
    area_mm2 = (512 * CROP_MPP / 1000) ** 2
    density = len(table) / area_mm2  # breast tissue: a few thousand nuclei per mm²
    assert 1000 < density < 8000
    assert np.isfinite(table[FEATURES + ["x", "y"]].to_numpy()).all()
    area_um2 = table["area"] * CROP_MPP**2
    assert area_um2.min() >= 10 and area_um2.max() <= 500 and 15 < area_um2.median() < 80


def test_bad_input(synthetic_adata):
    lib = synthetic_adata.uns["spatial"]["synthetic"]
    img = lib["images"]["fullres"]
    for bad, match in [(img[..., 0], "grayscale"), (np.dstack([img, img[..., :1]]), "alpha"),
                       (img[:0], "empty"), (img.astype(np.float32), "uint8")]:
        a = synthetic_adata.copy()
        a.uns["spatial"]["synthetic"]["images"]["fullres"] = bad
        with pytest.raises(ValueError, match=match):
            st.pp.segment_nuclei(a)
    off = synthetic_adata.copy()
    off.obsm["spatial"] = off.obsm["spatial"] + 10**6
    with pytest.raises(ValueError, match="no spot"):
        st.pp.segment_nuclei(off)
    with pytest.raises(ValueError, match=r"label image \(method=\) has shape"):
        st.pp.segment_nuclei(synthetic_adata, method=np.zeros((10, 10), dtype=np.int32))
    with pytest.raises(ValueError, match="unknown method"):
        st.pp.segment_nuclei(synthetic_adata, method="stardist")
    with pytest.raises(ValueError, match="region"):
        st.pp.segment_nuclei(synthetic_adata, region="tissue")
    no_img = synthetic_adata.copy()
    del no_img.uns["spatial"]["synthetic"]["images"]["fullres"]
    with pytest.raises(KeyError, match="full-resolution"):
        st.pp.segment_nuclei(no_img)
