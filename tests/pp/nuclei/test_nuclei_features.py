"""Spot morphology/topology features: Delaunay distances, pooling, AnnData contract."""

import logging

import numpy as np
import pandas as pd
import pytest

import sthisto as st
from sthisto.pp import nuclei

from ._nuclei_data import CROP_MPP, crop_adata


def test_delaunay_min_equals_nearest_neighbour():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (800, 2))
    out = nuclei.delaunay_distances(xy)
    brute = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    np.fill_diagonal(brute, np.inf)
    np.testing.assert_allclose(out[:, 2], brute.min(1), rtol=1e-12)
    assert (out[:, 0] >= out[:, 2]).all() and (out[:, 1] >= out[:, 0]).all()
    assert 5.5 < out[:, 3].mean() < 6.0  # planar triangulation: mean degree just under 6


def test_delaunay_degenerate_inputs():
    line = np.column_stack([np.arange(5.0) ** 2, np.zeros(5)])  # collinear
    out = nuclei.delaunay_distances(line)
    np.testing.assert_allclose(out[:, 2], [1, 1, 3, 5, 7])
    np.testing.assert_allclose(out[:, 3], [1, 2, 2, 2, 1])
    two = nuclei.delaunay_distances(np.array([[0.0, 0.0], [3.0, 4.0]]))
    np.testing.assert_allclose(two[:, :3], 5.0)
    one = nuclei.delaunay_distances(np.array([[1.0, 1.0]]))
    assert np.isnan(one[0, :3]).all() and one[0, 3] == 0
    dup = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 10.0]])
    out = nuclei.delaunay_distances(dup)
    assert np.isfinite(out).all() and out[3:, 2].min() == 0.0


def test_to_microns_pools_the_measured_table():
    labels = np.zeros((40, 40), dtype=np.int32)
    labels[2:10, 3:20] = 1
    labels[5, 3:12] = 0
    labels[20:30, 20:31] = 2
    table = nuclei.measure(labels)
    um = nuclei.to_microns(table, 0.5)
    assert list(um.columns) == list(nuclei.MORPHOLOGY_COLUMNS)
    np.testing.assert_allclose(um["convex_area_um2"], table["convex_area"] * 0.25)
    np.testing.assert_allclose(um["skeleton_length_um"], table["skeleton_length"] * 0.5)
    np.testing.assert_allclose(um["solidity"], table["area"] / table["convex_area"])
    pooled = nuclei.pool_spots(um, table[["centroid_x", "centroid_y"]].to_numpy(), np.array([[20.0, 20.0]]), 30.0)
    np.testing.assert_allclose(pooled["solidity"].iloc[0], um["solidity"].mean())
    with pytest.raises(ValueError, match="re-run"):
        nuclei.to_microns(table.drop(columns="skeleton_length"), 0.5)


def test_pool_spots_matches_a_loop():
    rng = np.random.default_rng(1)
    cent = rng.uniform(0, 500, (400, 2))
    feats = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    feats.loc[3, "a"] = np.nan
    spots = np.array([[100.0, 100.0], [300, 300], [130, 100], [-500, -500]])  # overlapping + empty
    out = nuclei.pool_spots(feats, cent, spots, 40.0, microns_per_pixel=0.5)
    for s, (x, y) in enumerate(spots):
        inside = np.hypot(cent[:, 0] - x, cent[:, 1] - y) <= 40.0
        assert out["nucleus_count"].iloc[s] == inside.sum()
        if inside.any():
            np.testing.assert_allclose(out["a"].iloc[s], np.nanmean(feats["a"].to_numpy()[inside]))
    assert out["no_nuclei"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert np.isnan(out["a"].iloc[3])
    area_mm2 = np.pi * (40 * 0.5 / 1000) ** 2
    np.testing.assert_allclose(out["nucleus_density_per_mm2"], out["nucleus_count"] / area_mm2)
    filled = nuclei.pool_spots(feats, cent, spots, 40.0, fill="mean")
    np.testing.assert_allclose(filled["b"].iloc[3], out["b"].iloc[:3].mean())
    with pytest.raises(ValueError, match="rows"):
        nuclei.pool_spots(feats.iloc[:5], cent, spots, 40.0)


def test_nuclei_features_on_synthetic(synthetic_adata, caplog):
    st.pp.segment_nuclei(synthetic_adata, region="all")
    with caplog.at_level(logging.WARNING, logger="sthisto"):
        st.pp.nuclei_features(synthetic_adata)
    m = synthetic_adata.obsm["sthisto_morphology"]
    t = synthetic_adata.obsm["sthisto_topology"]
    for df in (m, t):
        assert isinstance(df, pd.DataFrame) and (df.index == synthetic_adata.obs_names).all()
        assert np.isfinite(df.to_numpy()).all()
    assert {"area_um2", "perimeter_um", "major_axis_um", "nucleus_density_per_mm2",
            "orientation_abs_cos2"} <= set(m.columns)
    assert {"delaunay_mean_dist_um", "delaunay_max_dist_um", "delaunay_min_dist_um"} <= set(t.columns)
    empty = m["nucleus_count"] == 0
    assert (m["no_nuclei"] == empty).all() and (t["no_nuclei"] == empty).all()
    if empty.any():
        assert f"{int(empty.sum())} of 100 spots contain no nucleus" in caplog.text
    # the counts follow the planted nuclei per spot
    planted = synthetic_adata.uns["sthisto_synthetic"]["nuclei"]
    truth = np.bincount(planted["spot"][planted["spot"] >= 0], minlength=100)
    assert np.corrcoef(truth, m["nucleus_count"])[0, 1] > 0.95
    # and the mean area the planted sizes (1 µm/px: area_um2 = pi * a * b)
    sizes = planted.assign(area=np.pi * planted.semi_major * planted.semi_minor)
    size_truth = sizes[sizes.spot >= 0].groupby("spot")["area"].mean()
    got = m["area_um2"].to_numpy()[size_truth.index]
    assert np.corrcoef(size_truth, got)[0, 1] > 0.9
    assert 0 <= m["orientation_abs_cos2"].min() and m["orientation_abs_cos2"].max() <= 1
    # convex features: the hull covers the nucleus, planted ellipses are nearly convex
    has = m["no_nuclei"] == 0
    assert (m.loc[has, "convex_area_um2"] >= m.loc[has, "area_um2"]).all()
    assert 0.8 < m.loc[has, "solidity"].median() <= 1 and (m["solidity"] <= 1).all()
    assert (m.loc[has, "convex_perimeter_um"] <= m.loc[has, "perimeter_um"] + 1e-9).all()
    assert (m.loc[has, "skeleton_length_um"] < m.loc[has, "major_axis_um"]).all()


def test_units_follow_the_pixel_size(synthetic_adata):
    st.pp.segment_nuclei(synthetic_adata, region="all")
    ref = st.pp.nuclei_features(synthetic_adata, copy=True)
    twice = synthetic_adata.copy()
    twice.uns["sthisto_nuclei"]["params"]["microns_per_pixel"] = 2.0
    st.pp.nuclei_features(twice)
    a, b = ref.obsm["sthisto_morphology"], twice.obsm["sthisto_morphology"]
    np.testing.assert_allclose(b["area_um2"], 4 * a["area_um2"])
    np.testing.assert_allclose(b["perimeter_um"], 2 * a["perimeter_um"])
    np.testing.assert_allclose(b["eccentricity"], a["eccentricity"])
    np.testing.assert_allclose(b["convex_area_um2"], 4 * a["convex_area_um2"])
    for col in ("convex_perimeter_um", "skeleton_length_um"):
        np.testing.assert_allclose(b[col], 2 * a[col])
    np.testing.assert_allclose(b["solidity"], a["solidity"])
    np.testing.assert_allclose(twice.obsm["sthisto_topology"]["delaunay_min_dist_um"],
                               2 * ref.obsm["sthisto_topology"]["delaunay_min_dist_um"])


def test_copy_and_missing_input(synthetic_adata):
    with pytest.raises(KeyError, match="segment_nuclei"):
        st.pp.nuclei_features(synthetic_adata)
    st.pp.segment_nuclei(synthetic_adata)
    out = st.pp.nuclei_features(synthetic_adata, copy=True, fill="zero")
    assert "sthisto_morphology" not in synthetic_adata.obsm
    m = out.obsm["sthisto_morphology"]
    assert (m.loc[m["no_nuclei"] == 1, "area_um2"] == 0).all()
    with pytest.raises(ValueError, match="fill"):
        st.pp.nuclei_features(synthetic_adata, fill="median")


def test_real_crop_features():
    adata = crop_adata()
    st.pp.segment_nuclei(adata, region="all")
    st.pp.nuclei_features(adata)
    m, t = adata.obsm["sthisto_morphology"], adata.obsm["sthisto_topology"]
    assert np.isfinite(m.to_numpy()).all() and np.isfinite(t.to_numpy()).all()
    centre = "20x22"  # the spot at the centre of the crop is fully inside it
    assert 10 <= m.loc[centre, "nucleus_count"] <= 400  # 100 µm disk; a clump there is one object
    assert 15 < m.loc[centre, "area_um2"] < 80
    assert 2 < t.loc[centre, "delaunay_min_dist_um"] < t.loc[centre, "delaunay_mean_dist_um"] < 30
    assert CROP_MPP == pytest.approx(adata.uns["sthisto_nuclei"]["params"]["microns_per_pixel"])


def test_results_survive_h5ad(synthetic_adata, tmp_path):
    import anndata as ad

    st.pp.segment_nuclei(synthetic_adata)
    st.pp.nuclei_features(synthetic_adata)
    del synthetic_adata.uns["spatial"]["synthetic"]["images"]["fullres"]
    synthetic_adata.uns.pop("sthisto_synthetic")
    synthetic_adata.write_h5ad(tmp_path / "s.h5ad")
    back = ad.read_h5ad(tmp_path / "s.h5ad")
    pd.testing.assert_frame_equal(back.obsm["sthisto_morphology"], synthetic_adata.obsm["sthisto_morphology"])
    table = back.uns["sthisto_nuclei"]["nuclei"]
    assert len(table) == len(synthetic_adata.uns["sthisto_nuclei"]["nuclei"])
    assert back.uns["sthisto_nuclei"]["params"]["method"] == "watershed"
