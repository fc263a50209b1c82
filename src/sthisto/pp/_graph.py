"""The kNN / radius spot graph (squidpy-compatible) and exact hop rings for the ranking loss."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._errors import InputError
from sthisto._logging import logger
from sthisto._utils import Outputs, copy_or_self
from sthisto._validate import (
    distinct_positions,
    flag,
    integer,
    key_name,
    number,
    one_of,
    spatial_coords,
)


def knn_graph(
    xy: np.ndarray, *, n_neighs: int = 6, radius: float | None = None, symmetric: bool = True
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Return (connectivities, distances) CSR matrices without self loops, as squidpy builds them.

    With ``radius=None`` each spot links to its ``n_neighs`` nearest spots, found with
    scikit-learn's ``NearestNeighbors`` exactly as :func:`squidpy.gr.spatial_neighbors`
    (``coord_type="generic"``) does, so ties at equal distance (an ideal square grid) are
    broken the same deterministic way. With ``radius``, every spot within that distance is
    linked (squidpy's radius graph). ``symmetric=False`` returns squidpy's matrices
    unchanged (a kNN graph is directed: row ``i`` lists the neighbours of ``i``);
    ``symmetric=True`` links ``i`` and ``j`` when either is a neighbour of the other
    (``A ∨ Aᵀ``), the undirected graph M2TGLGO uses.

    Spots must have distinct positions (coincident spots raise), and a radius graph must
    link at least two spots (a radius below every nearest-spot distance raises; spots left
    without a neighbour are reported in a warning).

    Returns
    -------
    ``(connectivities, distances)``: float32 0/1 and float64 Euclidean CSR matrices.
    """
    from sklearn.neighbors import NearestNeighbors

    xy = coordinates(xy, "xy")
    n = len(xy)
    n_neighs = integer(n_neighs, "n_neighs", minimum=1)
    symmetric = flag(symmetric, "symmetric")
    distinct_positions(xy, np.arange(n), where="xy")
    if radius is None:
        if n <= n_neighs:
            raise ValueError(f"a {n_neighs}-NN graph needs more than {n_neighs} spots, got {n}.")
        tree = NearestNeighbors(n_neighbors=n_neighs, radius=1, metric="euclidean").fit(xy)
        dists, cols = tree.kneighbors()
        dists, cols = dists.reshape(-1), cols.reshape(-1)
        rows = np.repeat(np.arange(n), n_neighs)
    else:
        radius = number(radius, "radius", positive=True)
        tree = NearestNeighbors(radius=radius, metric="euclidean").fit(xy)
        dists, cols = tree.radius_neighbors()
        _check_radius(radius, [len(c) for c in cols], xy)
        rows = np.repeat(np.arange(n), [len(c) for c in cols])
        dists = np.concatenate(dists) if n else np.zeros(0)
        cols = np.concatenate(cols).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    conn = sp.csr_matrix((np.ones_like(rows, dtype=np.float32), (rows, cols)), shape=(n, n))
    dist = sp.csr_matrix((dists, (rows, cols)), shape=(n, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sp.SparseEfficiencyWarning)
        conn.setdiag(conn.diagonal())
        dist.setdiag(0.0)
    conn.eliminate_zeros()
    dist.eliminate_zeros()
    if symmetric:
        conn = conn.maximum(conn.T).tocsr().astype(np.float32)
        dist = dist.maximum(dist.T).tocsr()
    return conn, dist


def coordinates(xy, name: str) -> np.ndarray:
    """Return ``xy`` as a finite float64 ``(n, 2)`` array, raising an error naming ``name``."""
    try:
        arr = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an (n, 2) array of x, y numbers, got {type(xy).__name__}.") from None
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise InputError(f"{name} must be an (n, 2) array of x, y coordinates, got shape {arr.shape}.")
    if not np.isfinite(arr[:, :2]).all():
        raise InputError(f"{name} holds {int((~np.isfinite(arr[:, :2])).any(axis=1).sum())} NaN or infinite "
                         "coordinate(s).")
    return arr[:, :2]


def lattice_indices(adata: AnnData, row_key: str, col_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` int64 lattice indices of the bins from ``obs``, checked to be whole numbers."""
    out = []
    for key in (row_key, col_key):
        if key not in adata.obs:
            raise KeyError(f"adata.obs[{key!r}] (integer bin lattice index) is missing: read Visium HD bins with "
                           "sthisto.read.visium_hd or sthisto.read.spatialdata (spatialdata-io tables keep it).")
        values = pd.to_numeric(adata.obs[key], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            first = int(np.argmax(bad))
            value = adata.obs[key].iloc[first]
            shown = repr(value) if isinstance(value, str) else str(value)
            raise InputError(f"adata.obs[{key!r}] holds {int(bad.sum())} value(s) that are not whole numbers "
                             f"(e.g. {shown} at {adata.obs_names[first]!r}); a bin lattice index is an integer "
                             "row/column.")
        out.append(values.astype(np.int64))
    return out[0], out[1]


def _check_radius(radius: float, degrees: list[int], xy: np.ndarray) -> None:
    """Raise when a radius graph has no edge; warn about spots left without a neighbour."""
    isolated = int(np.sum(np.asarray(degrees) == 0))
    if not isolated:
        return
    from sklearn.neighbors import NearestNeighbors

    if len(xy) < 2:
        raise InputError(f"a radius graph needs at least 2 spots, got {len(xy)}.")
    nearest = NearestNeighbors(n_neighbors=1).fit(xy).kneighbors()[0].ravel()
    typical = float(np.median(nearest))
    if isolated == len(xy):
        raise InputError(
            f"radius={radius:g} links no two spots: the median distance to the nearest spot is {typical:.4g} "
            f"(same units as the coordinates, full-resolution pixels for obsm['spatial']). To fix: pass a "
            f"radius above it (e.g. radius={1.1 * typical:.4g}), or n_neighs= for a kNN graph."
        )
    logger.warning("radius=%g leaves %d of %d spots without a neighbour (median nearest-spot distance %.4g); "
                   "they stay isolated in the graph", radius, isolated, len(xy), typical)


@doc_params
def spatial_graph(
    adata: AnnData,
    *,
    n_neighs: int = 6,
    radius: float | None = None,
    symmetric: bool = True,
    spatial_key: str = K.SPATIAL_KEY,
    key_added: str = K.SPATIAL_NEIGHBORS,
    copy: bool = False,
) -> AnnData | None:
    """Build the spot graph used by M2TGLGO (kNN by default, k = 6).

    The graph is squidpy's generic graph (:func:`squidpy.gr.spatial_neighbors` with
    ``coord_type="generic"``), computed without squidpy: with ``symmetric=False`` the
    ``obsp`` matrices and ``uns`` entry equal squidpy's exactly; by default the kNN graph is
    made undirected (``A ∨ Aᵀ``), and ``uns[...]['params']`` gains ``symmetric=True``.
    Ties at equal distance (an ideal square grid) are broken as squidpy breaks them
    (scikit-learn ``NearestNeighbors``); measured HER2ST/Visium coordinates have no ties.

    Parameters
    ----------
    {adata}
    n_neighs
        Number of nearest neighbours per spot.
    radius
        If given, link all spots within this distance (full-res pixels) instead.
    symmetric
        Link ``i`` and ``j`` when either is among the other's nearest neighbours; ``False``
        keeps squidpy's directed kNN graph.
    {spatial_key}
    key_added
        Prefix of the ``obsp`` keys, as in :func:`squidpy.gr.spatial_neighbors`.
    {copy}

    Returns
    -------
    {returns_copy} Fields written:

    - ``obsp['{{key_added}}_connectivities']`` — float32 0/1 adjacency (symmetric unless
      ``symmetric=False``), no self loops.
    - ``obsp['{{key_added}}_distances']`` — Euclidean distances of the same edges.
    - ``uns['{{key_added}}_neighbors']`` — keys and parameters.
    """
    adata = copy_or_self(adata, copy)
    key_added = key_name(key_added)
    xy = spatial_coords(adata, spatial_key)
    distinct_positions(xy, adata.obs_names, where=f"adata.obsm[{spatial_key!r}]")
    conn, dist = knn_graph(xy, n_neighs=n_neighs, radius=radius, symmetric=symmetric)
    # squidpy's uns params (KNNBuilder / RadiusBuilder.uns_params)
    if radius is None:
        params = {"coord_type": "generic", "n_neighbors": int(n_neighs), "transform": None}
    else:
        params = {"coord_type": "generic", "radius": float(radius), "transform": None}
    if symmetric:
        params["symmetric"] = True
    _write_graph(adata, key_added, conn, dist, params)
    return adata if copy else None


def _write_graph(adata: AnnData, key_added: str, conn, dist, params: dict) -> None:
    """Write a spot graph as squidpy does: two ``obsp`` matrices and ``uns[f"{key_added}_neighbors"]``."""
    conn_key, dist_key = K.connectivities_key(key_added), K.distances_key(key_added)
    out = Outputs()
    out.add("obsp", conn_key, conn)
    out.add("obsp", dist_key, dist)
    out.add("uns", f"{key_added}_neighbors", {"connectivities_key": conn_key, "distances_key": dist_key,
                                              "params": params})
    out.write(adata)


def lattice_graph(
    adata: AnnData,
    *,
    n_neighs: int = 4,
    row_key: str = "array_row",
    col_key: str = "array_col",
    spatial_key: str = K.SPATIAL_KEY,
    key_added: str = K.SPATIAL_NEIGHBORS,
    copy: bool = False,
) -> AnnData | None:
    """Build the spot graph of square bins (Visium HD) from their lattice indices.

    Bins ``i`` and ``j`` are linked when their ``(row, col)`` indices differ by one step:
    4 neighbours (edges) or 8 (edges and corners). Exact on the lattice (no distance ties,
    missing bins simply have fewer neighbours), O(n), and the same graph as
    :func:`squidpy.gr.spatial_neighbors` with ``coord_type="grid", n_neighs=4`` on a square
    lattice. Distances are Euclidean between ``obsm[spatial_key]``.

    Parameters
    ----------
    {adata}
    n_neighs
        4 or 8.
    row_key, col_key
        ``obs`` columns with the integer lattice indices.
    {spatial_key}
    key_added
        Prefix of the ``obsp`` keys, as in :func:`squidpy.gr.spatial_neighbors`.
    {copy}

    Returns
    -------
    {returns_copy} Fields written: ``obsp['{{key_added}}_connectivities']`` (float32 0/1,
    symmetric, no self loops), ``obsp['{{key_added}}_distances']`` and
    ``uns['{{key_added}}_neighbors']`` (keys and parameters).
    """
    n_neighs = one_of(n_neighs, "n_neighs", (4, 8), fix="4 links the edge neighbours of a square bin, 8 the "
                      "corners too")
    adata = copy_or_self(adata, copy)
    key_added = key_name(key_added)
    rows, cols = lattice_indices(adata, row_key, col_key)
    xy = spatial_coords(adata, spatial_key)
    if adata.n_obs < 2:
        raise InputError(f"a lattice graph needs at least 2 bins, got {adata.n_obs}.")
    width = int(cols.max() - cols.min()) + 3
    keys = (rows - rows.min() + 1) * width + (cols - cols.min() + 1)
    if len(np.unique(keys)) != len(keys):
        raise ValueError(f"two bins share one ({row_key}, {col_key}) index; bins must be unique on the lattice.")
    order = np.argsort(keys)
    steps = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if n_neighs == 8 else [])
    src, dst = [], []
    for dr, dc in steps:  # each undirected edge once, both directions added below
        pos = np.minimum(np.searchsorted(keys[order], keys + dr * width + dc), len(keys) - 1)
        hit = keys[order][pos] == keys + dr * width + dc
        src.append(np.flatnonzero(hit))
        dst.append(order[pos[hit]])
    src, dst = np.concatenate(src), np.concatenate(dst)
    rows_e, cols_e = np.concatenate([src, dst]), np.concatenate([dst, src])
    d = np.hypot(*(xy[rows_e] - xy[cols_e]).T)
    if not len(rows_e):
        raise InputError(f"no two bins are neighbours on the lattice of obs[{row_key!r}]/obs[{col_key!r}] "
                         f"({adata.n_obs} bins, none adjacent); a graph without edges gives a model no context. "
                         "To fix: check the lattice indices, or use spatial_graph(radius=...).")
    n = adata.n_obs
    conn = sp.csr_matrix((np.ones(len(rows_e), np.float32), (rows_e, cols_e)), shape=(n, n))
    dist = sp.csr_matrix((d, (rows_e, cols_e)), shape=(n, n))
    _write_graph(adata, key_added, conn, dist, {"coord_type": "grid", "n_neighbors": n_neighs, "transform": None,
                                                "lattice": [row_key, col_key]})
    return adata if copy else None


def hop_rings(connectivities: sp.spmatrix, *, max_hop: int = 3) -> list[sp.csr_matrix]:
    """Exact hop-distance rings: ``rings[k-1][i, j] = 1`` iff the shortest path i→j has k edges.

    Computed with sparse boolean matrix powers (frontier expansion), not a per-node BFS.

    Returns
    -------
    ``max_hop`` float32 CSR matrices, ring 1 first; rings are disjoint and exclude the diagonal.
    """
    max_hop = integer(max_hop, "max_hop", minimum=1)
    given = connectivities if sp.issparse(connectivities) else np.asarray(connectivities)
    if given.dtype.kind not in "biuf" or given.ndim != 2 or given.shape[0] != given.shape[1]:
        raise InputError(f"connectivities must be a square (n, n) numeric adjacency matrix, got "
                         f"{type(connectivities).__name__} of shape {given.shape}.")
    a = sp.csr_matrix(given, dtype=bool)
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
