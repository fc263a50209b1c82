"""Topology of the nuclei: one Delaunay triangulation per section, distances to neighbours."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._columns import TOPOLOGY_COLUMNS


def delaunay_distances(xy: np.ndarray) -> np.ndarray:
    """Mean, max and min distance of every point to its Delaunay neighbours.

    One triangulation over all points. Degenerate inputs are handled: two points are each
    other's neighbour; collinear points use their neighbours along the line; duplicated
    points (left out by Qhull) take the distance 0 to their twin.

    Parameters
    ----------
    xy
        ``(n, 2)`` coordinates.

    Returns
    -------
    ``(n, 4)`` float64: mean, max, min distance and number of neighbours (NaN distances for
    a single point).
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must be (n, 2), got {xy.shape}")
    n = len(xy)
    out = np.full((n, 4), np.nan)
    if n == 0:
        return out
    out[:, 3] = 0
    if n == 1:
        return out
    src, dst = _delaunay_edges(xy)
    d = np.hypot(*(xy[src] - xy[dst]).T)
    deg = np.bincount(src, minlength=n)
    has = deg > 0
    out[has, 0] = np.bincount(src, weights=d, minlength=n)[has] / deg[has]
    mx = np.full(n, -np.inf)
    mn = np.full(n, np.inf)
    np.maximum.at(mx, src, d)
    np.minimum.at(mn, src, d)
    out[has, 1] = mx[has]
    out[has, 2] = mn[has]
    out[:, 3] = deg
    if not has.all():  # duplicates dropped by Qhull: nearest distance (0 to the twin)
        from scipy.spatial import cKDTree

        dd, _ = cKDTree(xy).query(xy[~has], k=2)
        out[~has, :3] = dd[:, 1:2]
        out[~has, 3] = 1
    return out


def _delaunay_edges(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed Delaunay edges ``(src, dst)``, both directions present."""
    from scipy.spatial import Delaunay, QhullError

    n = len(xy)
    try:
        if n < 3:
            raise QhullError("too few points")
        tri = Delaunay(xy)
        indptr, indices = tri.vertex_neighbor_vertices
        src = np.repeat(np.arange(n), np.diff(indptr))
        return src, indices.astype(np.int64)
    except QhullError:  # collinear or < 3 points: neighbours along the principal line
        centred = xy - xy.mean(0)
        direction = np.linalg.svd(centred, full_matrices=False)[2][0]
        order = np.argsort(centred @ direction, kind="stable")
        a, b = order[:-1], order[1:]
        return np.concatenate([a, b]), np.concatenate([b, a])


def delaunay_features(xy: np.ndarray, microns_per_pixel: float = 1.0) -> pd.DataFrame:
    """Per-nucleus Delaunay topology in µm.

    Returns
    -------
    DataFrame with :data:`TOPOLOGY_COLUMNS` (one row per point).
    """
    dist = delaunay_distances(xy)
    dist[:, :3] *= float(microns_per_pixel)
    return pd.DataFrame(dist, columns=list(TOPOLOGY_COLUMNS))
