import warnings
from collections import deque
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sthisto as st
from tests.conftest import import_spatial

DATA = Path(__file__).parents[1] / "data"


def _visium():
    return st.read.visium(DATA / "visium_100spots")


def _her2st():
    spots = pd.read_csv(DATA / "her2st_C2_selection.tsv", sep="\t")
    adata = ad.AnnData(np.zeros((len(spots), 1), dtype=np.float32))
    adata.obsm["spatial"] = spots[["pixel_x", "pixel_y"]].to_numpy()
    return adata


SECTIONS = {"visium": _visium, "her2st": _her2st}


def _same_csr(a, b):
    assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
    a, b = a.copy(), b.copy()
    a.sort_indices()
    b.sort_indices()
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("section", sorted(SECTIONS))
@pytest.mark.parametrize("kwargs", [{"n_neighs": 6}, {"n_neighs": 4}, {"radius": "pitch"}])
def test_spatial_graph_equals_squidpy(section, kwargs):
    sq = import_spatial("squidpy")
    adata = SECTIONS[section]()
    if kwargs.get("radius") == "pitch":  # a radius just above the spot pitch
        _, d = st.pp.knn_graph(adata.obsm["spatial"], n_neighs=1)
        kwargs = {"radius": float(np.median(d.data) * 1.1)}
    ref = adata.copy()
    with warnings.catch_warnings():  # squidpy >= 1.8 deprecates the wrapper (same builders)
        warnings.simplefilter("ignore", FutureWarning)
        sq.gr.spatial_neighbors(ref, coord_type="generic", **kwargs)
    ours = adata.copy()
    st.pp.spatial_graph(ours, symmetric=False, **kwargs)
    for key in ("spatial_connectivities", "spatial_distances"):
        _same_csr(ours.obsp[key], ref.obsp[key])
    assert ours.uns["spatial_neighbors"] == ref.uns["spatial_neighbors"]

    st.pp.spatial_graph(ours, **kwargs)  # default: the undirected version of squidpy's graph
    conn, dist = ref.obsp["spatial_connectivities"], ref.obsp["spatial_distances"]
    _same_csr(ours.obsp["spatial_connectivities"], conn.maximum(conn.T).tocsr())
    _same_csr(ours.obsp["spatial_distances"], dist.maximum(dist.T).tocsr())
    assert ours.uns["spatial_neighbors"]["params"] == {**ref.uns["spatial_neighbors"]["params"], "symmetric": True}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_spatial_graph_properties_without_squidpy(section):
    adata = SECTIONS[section]()
    st.pp.spatial_graph(adata)
    conn = adata.obsp["spatial_connectivities"]
    dist = adata.obsp["spatial_distances"]
    assert conn.dtype == np.float32 and dist.dtype == np.float64
    assert (conn != conn.T).nnz == 0 and conn.diagonal().sum() == 0
    assert set(np.unique(conn.data)) == {1.0}
    # every spot keeps its own 6 nearest neighbours; distances are Euclidean
    assert (np.diff(conn.indptr) >= 6).all()
    xy = adata.obsm["spatial"]
    r, c = dist.nonzero()
    np.testing.assert_allclose(dist[r, c].A1, np.linalg.norm(xy[r] - xy[c], axis=1))
    np.testing.assert_array_equal(conn.nonzero()[0], r)
    directed = st.pp.spatial_graph(adata, symmetric=False, copy=True).obsp["spatial_connectivities"]
    assert (np.diff(directed.indptr) == 6).all()
    nn6 = np.argsort(np.linalg.norm(xy[:, None] - xy[None], axis=2), axis=1)[:, 1:7]
    for i in range(adata.n_obs):
        assert set(directed[i].indices) == set(nn6[i])


def test_square_grid_ties_are_deterministic():
    # an ideal legacy-ST grid: 4 direct + 4 diagonal neighbours tie for k = 6
    gx, gy = np.meshgrid(np.arange(8), np.arange(8))
    xy = np.column_stack([gx.ravel(), gy.ravel()]) * 200.0
    a, _ = st.pp.knn_graph(xy, n_neighs=6, symmetric=False)
    b, _ = st.pp.knn_graph(xy.copy(), n_neighs=6, symmetric=False)
    assert (a != b).nnz == 0 and (np.diff(a.indptr) == 6).all()
    inner = 3 * 8 + 3
    d = np.linalg.norm(xy[a[inner].indices] - xy[inner], axis=1)
    assert np.sum(d == 200.0) == 4 and np.sum(np.isclose(d, 200.0 * np.sqrt(2))) == 2


def test_spatial_graph_errors_and_copy():
    adata = _her2st()
    out = st.pp.spatial_graph(adata, copy=True)
    assert "spatial_connectivities" not in adata.obsp and "spatial_connectivities" in out.obsp
    with pytest.raises(ValueError, match="more than"):
        st.pp.spatial_graph(adata[:5].copy(), n_neighs=6)
    with pytest.raises(KeyError, match="obsm"):
        st.pp.spatial_graph(adata, spatial_key="nope")


def _bfs_rings(adj: sp.csr_matrix, max_hop: int) -> list[set]:
    n = adj.shape[0]
    rings = [set() for _ in range(max_hop)]
    for s in range(n):
        dist = {s: 0}
        q = deque([s])
        while q:
            u = q.popleft()
            if dist[u] == max_hop:
                continue
            for v in adj.indices[adj.indptr[u] : adj.indptr[u + 1]]:
                if v not in dist:
                    dist[v] = dist[u] + 1
                    q.append(v)
        for v, d in dist.items():
            if d >= 1:
                rings[d - 1].add((s, int(v)))
    return rings


@pytest.mark.parametrize("seed", range(6))
def test_hop_rings_equal_bfs_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    dense = rng.random((n, n)) < rng.uniform(0.02, 0.2)
    dense = np.triu(dense, 1)
    dense = dense | dense.T  # undirected, possibly disconnected
    if seed % 2:
        dense[np.arange(n), np.arange(n)] = True  # self loops must be ignored
    adj = sp.csr_matrix(dense.astype(np.float32))
    max_hop = 3 + seed % 3
    rings = st.pp.hop_rings(adj, max_hop=max_hop)
    no_loops = sp.csr_matrix(dense & ~np.eye(n, dtype=bool))
    expected = _bfs_rings(no_loops, max_hop)
    assert len(rings) == max_hop
    for ring, exp in zip(rings, expected, strict=True):
        assert ring.dtype == np.float32
        got = set(zip(*[x.tolist() for x in ring.nonzero()], strict=True))
        assert got == exp


def test_hop_rings_on_the_her2st_graph_are_disjoint_and_symmetric():
    adata = _her2st()
    st.pp.spatial_graph(adata)
    rings = st.pp.hop_rings(adata.obsp["spatial_connectivities"], max_hop=3)
    total = sum(rings)
    assert total.max() == 1 and total.diagonal().sum() == 0
    for r in rings:
        assert (r != r.T).nnz == 0
    assert (rings[0] != adata.obsp["spatial_connectivities"]).nnz == 0
