"""Spot pooling: nuclei whose centroid lies in a spot disk, averaged; the one ``fill``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._columns import NO_NUCLEI, NUCLEUS_COUNT, NUCLEUS_DENSITY


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

    _check_fill(fill, ("nan", "mean", "zero"))
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
    out = fill_missing(pd.DataFrame(pooled, columns=list(features.columns), index=index), fill)
    out[NUCLEUS_COUNT] = count
    if microns_per_pixel is not None:
        area_mm2 = np.pi * (radius * float(microns_per_pixel) / 1000.0) ** 2
        out[NUCLEUS_DENSITY] = count / area_mm2
    out[NO_NUCLEI] = (count == 0).astype(np.float64)
    return out


def _check_fill(fill: str, allowed: tuple[str, ...]) -> None:
    if fill not in allowed:
        raise ValueError(f"fill must be one of {', '.join(repr(a) for a in allowed)}, got {fill!r}")


def fill_missing(df: pd.DataFrame, fill: str) -> pd.DataFrame:
    """Replace the non-finite values of every column (spots without nuclei).

    Parameters
    ----------
    df
        Numeric per-spot features.
    fill
        ``"nan"`` (leave them), ``"mean"`` (mean of the column's finite values; 0 when it
        has none) or ``"zero"``.

    Returns
    -------
    A new DataFrame with the same index and columns (float64).
    """
    _check_fill(fill, ("nan", "mean", "zero"))
    values = df.to_numpy(np.float64, copy=True)
    if fill != "nan":
        for j in range(values.shape[1]):
            bad = ~np.isfinite(values[:, j])
            if bad.any():
                good = values[~bad, j]
                values[bad, j] = good.mean() if (fill == "mean" and good.size) else 0.0
    return pd.DataFrame(values, index=df.index, columns=df.columns)


def assign_spots(centroids: np.ndarray, spots_xy: np.ndarray, radius: float, names) -> np.ndarray:
    """Name of the spot whose disk (``radius`` pixels) holds each centroid, ``""`` if none.

    Returns
    -------
    Object array of spot names, one per centroid.
    """
    from scipy.spatial import cKDTree

    out = np.full(len(centroids), "", dtype=object)
    if len(centroids) == 0 or len(spots_xy) == 0:
        return out
    dist, idx = cKDTree(spots_xy).query(centroids, k=1)
    hit = dist <= radius
    out[hit] = np.asarray(names, dtype=object)[idx[hit]]
    return out
