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


SPOT_BLOCK_PX = 4096  # side of the blocks of spots pooled as one task (full-resolution pixels)


def pool_spot_blocks(
    features: pd.DataFrame,
    centroids: np.ndarray,
    spots_xy: np.ndarray,
    radius: float,
    *,
    index,
    microns_per_pixel: float | None = None,
    executor=None,
    block_px: float = SPOT_BLOCK_PX,
    what: str = "spot block",
) -> pd.DataFrame:
    """:func:`pool_spots` (``fill="nan"``) in square blocks of spots, each a task of ``executor``.

    A block receives only its spots and the nuclei within ``radius`` of their bounding box,
    in their original order, so each spot averages the same nuclei in the same order and
    the result equals one :func:`pool_spots` over the section.

    Parameters
    ----------
    features, centroids, spots_xy, radius, index, microns_per_pixel
        As in :func:`pool_spots`.
    executor
        A :class:`~sthisto.pp._parallel.Runner` (``None``: the caller).
    block_px
        Side of a block, in the pixels of ``spots_xy``.
    what
        What a block is called in an error.

    Returns
    -------
    The DataFrame of :func:`pool_spots`, rows in the order of ``spots_xy``.
    """
    from sthisto.pp._parallel import Runner, map_tiles

    run = executor if executor is not None else Runner()
    spots_xy = np.asarray(spots_xy, dtype=np.float64).reshape(-1, 2)
    centroids = np.asarray(centroids, dtype=np.float64).reshape(-1, 2)
    if len(features) != len(centroids):
        raise ValueError(f"features has {len(features)} rows but there are {len(centroids)} centroids")
    key = np.floor(spots_xy / float(block_px)).astype(np.int64)
    order = np.lexsort((np.arange(len(spots_xy)), key[:, 0], key[:, 1]))
    cuts = np.flatnonzero(np.any(np.diff(key[order], axis=0) != 0, axis=1)) + 1 if len(order) else []
    blocks = np.split(order, cuts) if len(order) else []
    margin = float(radius) * (1 + 1e-9) + 1e-9

    def task(block):
        lo, hi = spots_xy[block].min(axis=0) - margin, spots_xy[block].max(axis=0) + margin
        near = np.flatnonzero(np.all((centroids >= lo) & (centroids <= hi), axis=1))
        return (features.iloc[near], centroids[near], spots_xy[block], float(radius), microns_per_pixel)

    def name(i):
        x, y = key[blocks[i][0]] * float(block_px)
        return f"{what} {i + 1} of {len(blocks)} (spots with x in [{x:g}, {x + block_px:g}), y in [{y:g}, {y + block_px:g}))"

    results = map_tiles(_pool_block, [(lambda b=b: task(b)) for b in blocks], executor=run,
                        max_in_flight=2 * run.slots, names=name)
    columns, values = None, None
    for block, part in zip(blocks, results, strict=True):
        if values is None:
            columns, values = list(part.columns), np.full((len(spots_xy), part.shape[1]), np.nan)
        values[block] = part.to_numpy(np.float64)
    if values is None:  # no spots
        return pool_spots(features, centroids, spots_xy, radius, index=index, microns_per_pixel=microns_per_pixel)
    return pd.DataFrame(values, index=index, columns=columns)


def _pool_block(features, centroids, spots_xy, radius, microns_per_pixel) -> pd.DataFrame:
    return pool_spots(features, centroids, spots_xy, radius, microns_per_pixel=microns_per_pixel, fill="nan")


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
