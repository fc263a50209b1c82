"""The kNN / radius spot graph (squidpy-compatible) and exact hop rings for the ranking loss."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .. import _constants as K
from .._docs import doc_params
from .._utils import copy_or_self, save_data
from .._validate import spatial_coords


def knn_graph(
    xy: np.ndarray, *, n_neighs: int = 6, radius: float | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Return symmetric (connectivities, distances) CSR matrices without self loops.

    With ``radius=None`` each spot links to its ``n_neighs`` nearest spots (as squidpy's
    generic kNN graph: the union of both directions). Ties at equal distance (the square
    grid of legacy ST) are broken deterministically by spot order. With ``radius``, every
    spot within that distance is linked.

    Returns
    -------
    ``(connectivities, distances)``: float32 0/1 and float64 Euclidean CSR matrices.
    """
    from scipy.spatial import cKDTree

    n = len(xy)
    if radius is None and n <= n_neighs:
        raise ValueError(f"a {n_neighs}-NN graph needs more than {n_neighs} spots, got {n}.")
    tree = cKDTree(xy)
    if radius is None:
        # stable sort on (distance, index) so equal distances keep spot order
        dist, idx = tree.query(xy, k=min(n, n_neighs + 8))
        order = np.lexsort((idx, np.round(dist, 9)), axis=1)
        idx = np.take_along_axis(idx, order, 1)
        dist = np.take_along_axis(dist, order, 1)
        not_self = idx != np.arange(n)[:, None]
        idx = idx[not_self].reshape(n, -1)[:, :n_neighs]
        dist = dist[not_self].reshape(n, -1)[:, :n_neighs]
        rows = np.repeat(np.arange(n), n_neighs)
        dists = sp.csr_matrix((dist.ravel(), (rows, idx.ravel())), shape=(n, n))
    else:
        dists = tree.sparse_distance_matrix(tree, max_distance=radius, output_type="coo_matrix")
        dists = sp.csr_matrix(dists)
        dists.setdiag(0)
    dists.eliminate_zeros()
    dists = dists.maximum(dists.T).tocsr()
    conn = dists.copy()
    conn.data[:] = 1.0
    return conn.astype(np.float32), dists.astype(np.float64)


@doc_params
def spatial_graph(
    adata: AnnData,
    *,
    n_neighs: int = 6,
    radius: float | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    key_added: str = K.SPATIAL_NEIGHBORS,
    copy: bool = False,
) -> AnnData | None:
    """Build the spot graph used by M2TGLGO (kNN by default, k = 6).

    Parameters
    ----------
    {adata}
    n_neighs
        Number of nearest neighbours per spot.
    radius
        If given, link all spots within this distance (full-res pixels) instead.
    {spatial_key}
    key_added
        Prefix of the ``obsp`` keys, as in :func:`squidpy.gr.spatial_neighbors`.
    {copy}

    Returns
    -------
    {returns_copy} Fields written:

    - ``obsp['{{key_added}}_connectivities']`` — symmetric 0/1 adjacency, no self loops.
    - ``obsp['{{key_added}}_distances']`` — Euclidean distances of the same edges.
    - ``uns['{{key_added}}_neighbors']`` — keys and parameters.
    """
    adata = copy_or_self(adata, copy)
    conn, dist = knn_graph(spatial_coords(adata, spatial_key), n_neighs=n_neighs, radius=radius)
    conn_key, dist_key = K.connectivities_key(key_added), K.distances_key(key_added)
    save_data(adata, attr="obsp", key=conn_key, data=conn)
    save_data(adata, attr="obsp", key=dist_key, data=dist)
    params = {"n_neighbors": n_neighs, "coord_type": "generic", "radius": radius, "transform": None}
    save_data(
        adata,
        attr="uns",
        key=f"{key_added}_neighbors",
        data={"connectivities_key": conn_key, "distances_key": dist_key, "params": params},
    )
    return adata if copy else None


def hop_rings(connectivities: sp.spmatrix, *, max_hop: int = 3) -> list[sp.csr_matrix]:
    """Exact hop-distance rings: ``rings[k-1][i, j] = 1`` iff the shortest path i→j has k edges.

    Computed with sparse boolean matrix powers (frontier expansion), not a per-node BFS.

    Returns
    -------
    ``max_hop`` float32 CSR matrices, ring 1 first; rings are disjoint and exclude the diagonal.
    """
    a = sp.csr_matrix(connectivities, dtype=bool)
    a.setdiag(False)
    a.eliminate_zeros()
    n = a.shape[0]
    reached = sp.identity(n, dtype=bool, format="csr")
    frontier = reached
    rings = []
    for _ in range(max_hop):
        nxt = (frontier @ a).astype(bool)
        ring = (nxt > reached).astype(bool).tocsr()  # new nodes only
        ring.eliminate_zeros()
        rings.append(ring.astype(np.float32))
        reached = (reached + ring).astype(bool)
        frontier = ring
    return rings
