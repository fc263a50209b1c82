"""Square bins: exact membership, pooling vs a slow reference, lattice graph, bins per nucleus, HD end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sthisto as st
from sthisto.pp._bins import bin_membership, fit_lattice
from tests.conftest import import_spatial

HD = Path(__file__).parents[1] / "data" / "visium_hd_tiny"


def _rotated_lattice(n=12, pitch=10.0, theta_deg=7.0, origin=(40.0, 25.0)):
    t = np.deg2rad(theta_deg)
    rot = pitch * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    rows, cols = np.meshgrid(np.arange(5, 5 + n), np.arange(3, 3 + n), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    xy = np.column_stack([cols, rows]) @ rot.T + origin
    return rows, cols, xy, rot, np.asarray(origin)


def test_membership_is_exact_on_a_rotated_lattice():
    rows, cols, xy, rot, origin = _rotated_lattice()
    lattice = fit_lattice(rows, cols, xy)
    np.testing.assert_allclose(lattice[:2, :2], rot, atol=1e-9)
    rng = np.random.default_rng(0)
    pts = rng.uniform(xy.min(0) - 15, xy.max(0) + 15, size=(3000, 2))
    p_idx, b_idx = bin_membership(pts, rows, cols, lattice)
    # slow reference: a point is in bin b when its coordinates in the bin's frame lie in [-0.5, 0.5)²
    local = (pts[:, None, :] - xy[None]) @ np.linalg.inv(rot).T
    inside = np.all((local >= -0.5) & (local < 0.5), axis=2)
    ref_p, ref_b = np.nonzero(inside)
    assert sorted(zip(p_idx, b_idx, strict=True)) == sorted(zip(ref_p, ref_b, strict=True))
    # context 1: the 3 × 3 block of bins around the point's cell
    p1, b1 = bin_membership(pts, rows, cols, lattice, context=1)
    cheb = np.abs(np.floor(((pts[:, None, :] - xy[None]) @ np.linalg.inv(rot).T) + 0.5)).max(axis=2)
    ref_p1, ref_b1 = np.nonzero(cheb <= 1)
    assert sorted(zip(p1, b1, strict=True)) == sorted(zip(ref_p1, ref_b1, strict=True))


def test_lattice_fit_refuses_scattered_points():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="not on a square lattice"):
        fit_lattice(np.arange(20) % 4, np.arange(20) // 4, rng.uniform(0, 100, size=(20, 2)))


def _hd_section(bin_size=8):
    import_spatial("spatialdata_io")
    return st.read.visium_hd(HD, bin_size=bin_size)


@pytest.fixture(scope="module")
def hd8():
    adata = _hd_section(8)
    st.pp.segment_nuclei(adata)
    return adata


def test_bin_nuclei_features_equal_a_slow_reference(hd8):
    adata = hd8.copy()
    st.pp.bin_nuclei_features(adata, context=1)
    morph = adata.obsm["sthisto_morphology"]
    nuclei = adata.uns["sthisto_nuclei"]["nuclei"]
    mpp = adata.uns["sthisto_nuclei"]["params"]["microns_per_pixel"]
    lattice = fit_lattice(adata.obs["array_row"], adata.obs["array_col"], adata.obsm["spatial"])
    inv = np.linalg.inv(lattice)
    frac = nuclei[["x", "y"]].to_numpy() @ inv[:2, :2].T + inv[:2, 2]
    cell = np.floor(frac + 0.5)
    area = nuclei["area"].to_numpy() * mpp**2
    rows, cols = adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy()
    for i in np.random.default_rng(0).choice(adata.n_obs, 60, replace=False):
        members = (np.abs(cell[:, 0] - cols[i]) <= 1) & (np.abs(cell[:, 1] - rows[i]) <= 1)
        assert morph["nucleus_count"].iloc[i] == members.sum()
        if members.any():
            assert morph["area_um2"].iloc[i] == pytest.approx(area[members].mean())
        else:
            assert morph["no_nuclei"].iloc[i] == 1.0
    assert np.isfinite(morph.to_numpy()).all() and np.isfinite(adata.obsm["sthisto_topology"].to_numpy()).all()
    side_mm = 3 * 8.0 / 1000
    np.testing.assert_allclose(morph["nucleus_density_per_mm2"], morph["nucleus_count"] / side_mm**2, rtol=1e-3)
    # each nucleus is counted once per bin of its 3 × 3 block
    assert morph["nucleus_count"].sum() <= 9 * len(nuclei)


def test_lattice_graph_matches_squidpy_grid_and_brute_force(hd8):
    adata = hd8.copy()
    st.pp.lattice_graph(adata)
    conn = adata.obsp["spatial_connectivities"]
    r, c = adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy()
    cheb = np.maximum(np.abs(r[:, None] - r[None]), np.abs(c[:, None] - c[None]))
    manhattan = np.abs(r[:, None] - r[None]) + np.abs(c[:, None] - c[None])
    np.testing.assert_array_equal(conn.toarray() > 0, manhattan == 1)
    st.pp.lattice_graph(adata, n_neighs=8, key_added="moore")
    np.testing.assert_array_equal(adata.obsp["moore_connectivities"].toarray() > 0, cheb == 1)
    pitch = adata.uns["spatial"]["square_008um"]["scalefactors"]["spot_diameter_fullres"]
    np.testing.assert_allclose(adata.obsp["spatial_distances"].data, pitch, rtol=1e-6)

    sq = import_spatial("squidpy")
    ref = adata.copy()
    sq.gr.spatial_neighbors(ref, coord_type="grid", n_neighs=4)
    a, b = conn.tocsr(), sp.csr_matrix(ref.obsp["spatial_connectivities"])
    assert (a != b).nnz == 0


def test_bins_to_nuclei_conserves_counts(tmp_path):
    adata = _hd_section(2)
    st.pp.segment_nuclei(adata, labels_path=tmp_path / "labels.npy")
    cells = st.pp.bins_to_nuclei(adata)
    labels = np.load(tmp_path / "labels.npy")
    xy = np.floor(adata.obsm["spatial"] + 0.5).astype(int)
    under = labels[xy[:, 1], xy[:, 0]]
    assert cells.X.sum() == pytest.approx(adata.X[under > 0].sum())
    first = cells.obs["nucleus_id"].iloc[0]
    np.testing.assert_allclose(cells.X[0].toarray().ravel(), np.asarray(adata.X[under == first].sum(0)).ravel())
    assert (cells.obs["n_bins"] > 3).mean() > 0.5  # 2 µm bins: several per nucleus
    assert list(cells.obsm["sthisto_morphology"].columns) == list(st.pp.nuclei.MORPHOLOGY_COLUMNS)
    # without a label image: nearest centroid within the nucleus radius
    del adata.uns["sthisto_nuclei"]["params"]["labels_path"]
    near = st.pp.bins_to_nuclei(adata)
    assert 0.5 * cells.X.sum() < near.X.sum() <= adata.X.sum()


def test_visium_hd_end_to_end_fit_and_predict(hd8):
    train = hd8.copy()
    test = _hd_section(16)
    st.pp.segment_nuclei(test)
    for a in (train, test):
        st.pp.bin_nuclei_features(a, context=1)
        st.pp.image_features(a, model="texture", patch_um=32.0, patch_px=32)
        st.pp.lattice_graph(a)
    mods = ("texture", "morphology", "topology")
    model = st.tl.fit([train], genes=list(train.var_names), modalities=mods, epochs=10, lr=1e-3,
                      use_go=False, progress=False)
    st.tl.predict(test, model)
    st.tl.evaluate(test)
    pcc = test.var["sthisto_pcc"]
    assert np.isfinite(test.layers["sthisto_pred"]).all()
    assert pcc.notna().all()
    # the fixture's counts follow hematoxylin/eosin: image features carry signal across bin sizes
    assert pcc.median() > 0.15, pcc.describe()  # 0.30 measured at 10 epochs
    sdata = st.io.to_spatialdata(test)
    assert "square_016um_spots_sthisto" in sdata.tables
    assert sdata.tables["square_016um_spots_sthisto"].n_obs == test.n_obs
    assert isinstance(pd.DataFrame(test.obsm["sthisto_morphology"]), pd.DataFrame)
