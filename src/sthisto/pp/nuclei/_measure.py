"""``measure``: per-nucleus shape measurements of a label image, and their physical units.

:func:`measure` runs the Numba kernels of :mod:`._kernels` (no Python loop over objects) and
returns, for every label, the quantities :func:`skimage.measure.regionprops` defines: area,
perimeter (skimage's 4-connected weighted-border definition), centroid, bounding box,
second central moments → major/minor axis length, eccentricity and orientation, extent,
convex area, solidity and the perimeter of the convex hull image; and the skeleton length
(pixels of ``skimage.morphology.skeletonize``). Circularity (``4π·area / perimeter²``) and
aspect ratio (``major / minor``) are derived from them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _kernels as kernels
from ._columns import MEASURE_COLUMNS, MICRON_UNITS


def as_label_image(labels) -> np.ndarray:
    """Check and convert a label image to a contiguous int32/int64 array.

    Returns
    -------
    The ``(H, W)`` label image (booleans become 0/1).
    """
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"a label image must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"a label image must hold integers, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError("a label image must not hold negative labels (0 is background)")
    if arr.dtype not in (np.int32, np.int64):
        arr = arr.astype(np.int64 if arr.size and arr.max() > np.iinfo(np.int32).max else np.int32)
    return np.ascontiguousarray(arr)


def measure_arrays(labels) -> tuple[np.ndarray, np.ndarray]:
    """Measure every label of ``labels``.

    Returns
    -------
    ``(label_values, values)``: int64 ``(n,)`` and float64 ``(n, 19)`` in the order of
    :data:`MEASURE_COLUMNS` without ``label``.
    """
    arr = as_label_image(labels)
    max_label = int(arr.max()) if arr.size else 0
    if max_label == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(MEASURE_COLUMNS) - 1))
    if max_label > 4 * arr.size + 1024:  # sparse huge ids: compact them first
        values, inverse = np.unique(arr, return_inverse=True)
        compact = inverse.reshape(arr.shape).astype(np.int32) + (0 if values[0] == 0 else 1)
        present = values[values > 0]
        _, table = measure_arrays(compact)
        return present.astype(np.int64), table
    return kernels.measure_labels(arr, max_label)


def measure(labels, *, offset: tuple[int, int] = (0, 0)) -> pd.DataFrame:
    """Per-label shape measurements of a label image, in pixel units.

    Parameters
    ----------
    labels
        ``(H, W)`` integer label image, 0 = background (e.g. from :func:`segment_tile`,
        HoVer-Net, CellViT or StarDist).
    offset
        ``(y, x)`` added to centroids and bounding boxes (position of a tile in its slide).

    Returns
    -------
    DataFrame with one row per label and the columns :data:`MEASURE_COLUMNS`: ``label``,
    ``centroid_y``, ``centroid_x``, ``bbox_y0``, ``bbox_x0``, ``bbox_y1``, ``bbox_x1``
    (exclusive), ``area``, ``perimeter``, ``major_axis``, ``minor_axis``, ``eccentricity``,
    ``orientation`` (radians, skimage's convention), ``extent``, ``circularity``,
    ``aspect_ratio``, ``convex_area``, ``solidity`` (``area / convex_area``),
    ``convex_perimeter`` (skimage's 4-connected perimeter of the convex hull image) and
    ``skeleton_length`` (pixels of ``skimage.morphology.skeletonize`` of the object). Values
    equal :func:`skimage.measure.regionprops_table` where both define them; circularity and
    aspect ratio are NaN for degenerate objects (zero perimeter or zero minor axis).
    """
    present, table = measure_arrays(labels)
    df = pd.DataFrame(table, columns=list(MEASURE_COLUMNS[1:]))
    df.insert(0, "label", present)
    oy, ox = offset
    for col, o in (("centroid_y", oy), ("bbox_y0", oy), ("bbox_y1", oy),
                   ("centroid_x", ox), ("bbox_x0", ox), ("bbox_x1", ox)):
        df[col] += o
    for col in ("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1", "area"):
        df[col] = df[col].astype(np.int64)
    return df


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
    missing = [c for c in MICRON_UNITS if c not in table.columns]
    if missing:
        raise ValueError(f"the nuclei table lacks the columns {missing}: measure it with "
                         "`sthisto.pp.nuclei.measure` (or re-run `sthisto.pp.segment_nuclei`).")
    out = {}
    for col, (name, power) in MICRON_UNITS.items():
        values = table[col].to_numpy(np.float64)
        if col == "orientation":
            values = np.abs(np.cos(2 * values))
        out[name] = values if power is None else values * mpp**power
    return pd.DataFrame(out, index=table.index)
