"""Nuclei on plain arrays, for users without AnnData.

A typical pipeline::

    from sthisto.pp import nuclei

    table = nuclei.segment_image(rgb, microns_per_pixel=0.5)        # or nuclei.measure(labels)
    feats = nuclei.to_microns(table, microns_per_pixel=0.5)          # µm units
    topo = nuclei.delaunay_distances(table[["x", "y"]].to_numpy())  # (n, 3) mean/max/min
    spots = nuclei.pool_spots(feats, table[["x", "y"]].to_numpy(), spots_xy, radius_px)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sthisto.pp._kernels import hematoxylin, measure
from sthisto.pp._segment import (
    assign_spots,
    hematoxylin_threshold,
    segment_image,
    segment_tile,
    tile_windows,
)

__all__ = [
    "measure",
    "hematoxylin",
    "segment_tile",
    "segment_image",
    "hematoxylin_threshold",
    "tile_windows",
    "assign_spots",
    "to_microns",
    "delaunay_distances",
    "delaunay_features",
    "pool_spots",
]

MORPHOLOGY_COLUMNS = (
    "area_um2", "perimeter_um", "major_axis_um", "minor_axis_um", "eccentricity",
    "orientation_abs_cos2", "extent", "circularity", "aspect_ratio", "convex_area_um2",
    "solidity", "convex_perimeter_um", "skeleton_length_um",
)
_PIXEL_COLUMNS = (
    "area", "perimeter", "major_axis", "minor_axis", "eccentricity", "orientation", "extent",
    "circularity", "aspect_ratio", "convex_area", "solidity", "convex_perimeter", "skeleton_length",
)
TOPOLOGY_COLUMNS = (
    "delaunay_mean_dist_um", "delaunay_max_dist_um", "delaunay_min_dist_um", "delaunay_degree",
)


def to_microns(table: pd.DataFrame, microns_per_pixel: float) -> pd.DataFrame:
    """Per-nucleus morphology in physical units from a pixel table.

    Parameters
    ----------
    table
        Output of :func:`measure` or :func:`segment_image`.
    microns_per_pixel
        Pixel size.

    Returns
    -------
    DataFrame (same index) with :data:`MORPHOLOGY_COLUMNS`: areas in µm², lengths in µm,
    orientation as ``|cos 2θ|`` (1 = aligned with an image axis, 0 = diagonal), the
    unit-free eccentricity, extent, circularity, aspect ratio and solidity, and the skeleton
    length as its pixel count times the pixel size.
    """
    mpp = float(microns_per_pixel)
    if not (np.isfinite(mpp) and mpp > 0):
        raise ValueError(f"microns_per_pixel must be positive, got {microns_per_pixel}")
    missing = [c for c in _PIXEL_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the nuclei table lacks the columns {missing}: measure it with "
                         "`sthisto.pp.nuclei.measure` (or re-run `sthisto.pp.segment_nuclei`).")
    return pd.DataFrame(
        {
            "area_um2": table["area"].to_numpy(np.float64) * mpp**2,
            "perimeter_um": table["perimeter"].to_numpy(np.float64) * mpp,
            "major_axis_um": table["major_axis"].to_numpy(np.float64) * mpp,
            "minor_axis_um": table["minor_axis"].to_numpy(np.float64) * mpp,
            "eccentricity": table["eccentricity"].to_numpy(np.float64),
            "orientation_abs_cos2": np.abs(np.cos(2 * table["orientation"].to_numpy(np.float64))),
            "extent": table["extent"].to_numpy(np.float64),
            "circularity": table["circularity"].to_numpy(np.float64),
            "aspect_ratio": table["aspect_ratio"].to_numpy(np.float64),
            "convex_area_um2": table["convex_area"].to_numpy(np.float64) * mpp**2,
            "solidity": table["solidity"].to_numpy(np.float64),
            "convex_perimeter_um": table["convex_perimeter"].to_numpy(np.float64) * mpp,
            "skeleton_length_um": table["skeleton_length"].to_numpy(np.float64) * mpp,
        },
        index=table.index,
    )


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


def pool_spots(
    features: pd.DataFrame,
    centroids: np.ndarray,
    spots_xy: np.ndarray,
    radius: float,
    *,
    index=None,
    microns_per_pixel: float | None = None,
    fill: str = "nan",
) -> pd.DataFrame:
    """Average per-nucleus features over the nuclei whose centroid lies in each spot disk.

    Parameters
    ----------
    features
        Numeric per-nucleus features (one row per nucleus); NaN values are ignored.
    centroids
        ``(n_nuclei, 2)`` nucleus centroids (x, y) in pixels.
    spots_xy
        ``(n_spots, 2)`` spot centres (x, y) in the same pixels.
    radius
        Spot radius in pixels. A nucleus inside several (overlapping) disks counts in each.
    index
        Index of the result (e.g. ``obs_names``).
    microns_per_pixel
        When given, adds ``nucleus_density_per_mm2``.
    fill
        Value of spots without nuclei (or without a finite value): ``"nan"``, ``"mean"``
        (mean over the spots that have one) or ``"zero"``.

    Returns
    -------
    DataFrame (one row per spot): the mean of every feature column, ``nucleus_count``,
    ``nucleus_density_per_mm2`` (with ``microns_per_pixel``) and ``no_nuclei`` (1.0 for
    spots without a nucleus, else 0.0).
    """
    from scipy.spatial import cKDTree

    if fill not in ("nan", "mean", "zero"):
        raise ValueError(f"fill must be 'nan', 'mean' or 'zero', got {fill!r}")
    centroids = np.asarray(centroids, dtype=np.float64).reshape(-1, 2)
    spots_xy = np.asarray(spots_xy, dtype=np.float64).reshape(-1, 2)
    if len(features) != len(centroids):
        raise ValueError(f"features has {len(features)} rows but there are {len(centroids)} centroids")
    n_spots = len(spots_xy)
    values = features.to_numpy(np.float64)
    if len(centroids):
        members = cKDTree(spots_xy).query_ball_point(centroids, r=radius)
        lens = np.fromiter((len(m) for m in members), dtype=np.int64, count=len(members))
        nuc = np.repeat(np.arange(len(centroids)), lens)
        spot = np.fromiter((s for m in members for s in m), dtype=np.int64, count=int(lens.sum()))
    else:
        nuc = spot = np.zeros(0, dtype=np.int64)
    count = np.bincount(spot, minlength=n_spots).astype(np.float64)
    pooled = np.full((n_spots, values.shape[1]), np.nan)
    for j in range(values.shape[1]):
        v = values[nuc, j]
        ok = np.isfinite(v)
        num = np.bincount(spot[ok], weights=v[ok], minlength=n_spots)
        den = np.bincount(spot[ok], minlength=n_spots)
        pooled[den > 0, j] = num[den > 0] / den[den > 0]
    if fill != "nan":
        for j in range(pooled.shape[1]):
            col = pooled[:, j]
            bad = ~np.isfinite(col)
            if bad.any():
                col[bad] = np.nanmean(col) if fill == "mean" and (~bad).any() else 0.0
    out = pd.DataFrame(pooled, columns=list(features.columns), index=index)
    out["nucleus_count"] = count
    if microns_per_pixel is not None:
        area_mm2 = np.pi * (radius * float(microns_per_pixel) / 1000.0) ** 2
        out["nucleus_density_per_mm2"] = count / area_mm2
    out["no_nuclei"] = (count == 0).astype(np.float64)
    return out
