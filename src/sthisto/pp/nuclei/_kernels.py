"""Numba kernels of :func:`~sthisto.pp.nuclei.measure` (one pass per job, no loop over objects in Python).

- :func:`_row_runs` is the one scanner of the label image: it lists the horizontal runs of
  equal labels (row, first column, end column, object). Every later pass walks the runs.
- :func:`_accumulate`: per object area, bounding box, integer moment sums (closed forms per
  run, exact in int64) and perimeter codes → :func:`_finalize` gives skimage's centroid,
  axes, eccentricity, orientation, extent, perimeter, circularity and aspect ratio.
- :func:`._perimeter._border_code` is the one border-code helper (skimage's perimeter
  weights); it serves the object's perimeter and the perimeter of its convex hull image.
- :func:`_per_object`: per object, the convex hull from its row extremes (:mod:`._hull`) →
  convex area, solidity, convex perimeter; and the skeleton length, the pixels left by the
  thinning of ``skimage.morphology.skeletonize`` (:mod:`._skeleton`) on the object's own
  bounding box. Scratch buffers are allocated once for all objects.

All kernels are compiled with ``cache=True`` and ``nogil=True`` so tiles can be measured
in parallel threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._hull import _hull_perimeter, _hull_polygon, _hull_rows
from ._perimeter import _PERIMETER_CLASS, _PERIMETER_WEIGHTS, _border_code, _border_labels
from ._skeleton import THINNING_TABLE, thin_count


@numba.njit(cache=True, nogil=True)
def _row_runs(labels, max_label):
    """Horizontal runs of equal non-zero labels, in raster order, and the objects present.

    Returns ``(runs, label_of_run, lut, n)``: ``runs[r] = (row, j0, j1, k)`` with ``j1``
    exclusive and ``k`` the compact object index (increasing label order) of the run's label
    value ``label_of_run[r]``; ``lut`` maps a label value to ``k`` (-1 when absent) and ``n``
    is the number of objects.
    """
    h, w = labels.shape
    lut = np.full(max_label + 1, -1, dtype=np.int64)
    m = 0
    for i in range(h):  # count the runs first (the output is allocated once); mark the labels
        prev = 0
        for j in range(w):
            lab = labels[i, j]
            if lab != prev and lab > 0:
                m += 1
                lut[lab] = 0
            prev = lab
    n = 0
    for v in range(1, max_label + 1):
        if lut[v] == 0:
            lut[v] = n
            n += 1
    runs = np.empty((m, 4), dtype=np.int64)
    labs = np.empty(m, dtype=labels.dtype)
    m = 0
    for i in range(h):
        j = 0
        while j < w:
            lab = labels[i, j]
            if lab <= 0:
                j += 1
                continue
            j0 = j
            while j < w and labels[i, j] == lab:
                j += 1
            runs[m, 0] = i
            runs[m, 1] = j0
            runs[m, 2] = j
            runs[m, 3] = lut[lab]
            labs[m] = lab
            m += 1
    return runs, labs, lut, n


@numba.njit(cache=True, nogil=True)
def _accumulate(labels, runs, labs, n, classes):
    """Area, bbox, integer moment sums and perimeter classes per object, over the runs.

    Moments are summed relative to the first pixel met of each object (its reference), with
    closed forms per run, so sums stay small and exact in int64.
    """
    bl = _border_labels(labels, runs, labs)
    area = np.zeros(n, dtype=np.int64)
    ref = np.zeros((n, 2), dtype=np.int64)
    bbox = np.zeros((n, 4), dtype=np.int64)  # y0, x0, y1, x1 (exclusive)
    sums = np.zeros((n, 5), dtype=np.int64)  # sum dy, dx, dy², dx², dy·dx (relative to ref)
    perim = np.zeros((n, 3), dtype=np.int64)  # border pixels per perimeter weight class
    for r in range(runs.shape[0]):
        i, j0, j, k = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
        lab = labs[r]
        if area[k] == 0:
            ref[k, 0] = i
            ref[k, 1] = j0
            bbox[k, 0] = i
            bbox[k, 1] = j0
            bbox[k, 3] = j
        run = j - j0
        area[k] += run
        if j0 < bbox[k, 1]:
            bbox[k, 1] = j0
        if j > bbox[k, 3]:
            bbox[k, 3] = j
        bbox[k, 2] = i + 1  # runs come in increasing row order
        dy = i - ref[k, 0]
        a = j0 - ref[k, 1]
        tri = run * (run - 1) // 2
        sdx = run * a + tri
        sums[k, 0] += run * dy
        sums[k, 1] += sdx
        sums[k, 2] += run * dy * dy
        sums[k, 3] += run * a * a + 2 * a * tri + (run - 1) * run * (2 * run - 1) // 6
        sums[k, 4] += dy * sdx
        for jj in range(j0 + 1, j + 1):  # padded coordinates (i + 1, jj)
            if bl[i + 1, jj] == lab:
                c = classes[_border_code(bl, i + 1, jj, lab)]
                if c >= 0:
                    perim[k, c] += 1
    return area, ref, bbox, sums, perim


@numba.njit(cache=True, nogil=True)
def _central(n, s, ss):
    """Variance sum/n - mean² from integer sums, exact in int64 when it cannot overflow."""
    if n < 3037000499 and ss < 9.2e18 / max(n, 1) and abs(s) < 3037000499:
        return float(n * ss - s * s) / (float(n) * float(n))
    m = s / n
    return ss / n - m * m


@numba.njit(cache=True, nogil=True)
def _finalize(area, ref, bbox, sums, perim, weights):
    n = area.shape[0]
    out = np.empty((n, 11), dtype=np.float64)
    for k in range(n):
        a = area[k]
        p = perim[k, 0] * weights[0] + perim[k, 1] * weights[1] + perim[k, 2] * weights[2]
        my = sums[k, 0] / a
        mx = sums[k, 1] / a
        out[k, 0] = ref[k, 0] + my
        out[k, 1] = ref[k, 1] + mx
        vy = _central(a, sums[k, 0], sums[k, 2])
        vx = _central(a, sums[k, 1], sums[k, 3])
        if a < 3037000499 and abs(sums[k, 4]) < 9.2e18 / max(a, 1):
            cxy = float(a * sums[k, 4] - sums[k, 0] * sums[k, 1]) / (float(a) * float(a))
        else:
            cxy = sums[k, 4] / a - my * mx
        # skimage inertia tensor [[a_, b_], [b_, c_]] with a_ = var(cols), c_ = var(rows)
        ta, tb, tc = vx, -cxy, vy
        half = 0.5 * (ta + tc)
        rad = math.sqrt(0.25 * (ta - tc) ** 2 + tb * tb)
        l1 = max(half + rad, 0.0)
        l2 = max(half - rad, 0.0)
        major = 4.0 * math.sqrt(l1)
        minor = 4.0 * math.sqrt(l2)
        out[k, 2] = a
        out[k, 3] = p
        out[k, 4] = major
        out[k, 5] = minor
        out[k, 6] = math.sqrt(1.0 - l2 / l1) if l1 > 0 else 0.0
        if ta - tc == 0:
            out[k, 7] = math.pi / 4.0 if tb < 0 else -math.pi / 4.0
        else:
            out[k, 7] = 0.5 * math.atan2(-2.0 * tb, tc - ta)
        box = (bbox[k, 2] - bbox[k, 0]) * (bbox[k, 3] - bbox[k, 1])
        out[k, 8] = a / box
        out[k, 9] = 4.0 * math.pi * a / p**2 if p > 0 else np.nan
        out[k, 10] = major / minor if minor > 0 else np.nan
    return out


@numba.njit(cache=True, nogil=True)
def _runs_by_object(runs, n):
    """Run indices grouped by object (counting sort, raster order kept): ``(start, order)``."""
    start = np.zeros(n + 1, dtype=np.int64)
    for r in range(runs.shape[0]):
        start[runs[r, 3] + 1] += 1
    for k in range(n):
        start[k + 1] += start[k]
    fill = start[:-1].copy()
    order = np.empty(runs.shape[0], dtype=np.int64)
    for r in range(runs.shape[0]):
        k = runs[r, 3]
        order[fill[k]] = r
        fill[k] += 1
    return start, order


@numba.njit(cache=True, nogil=True)
def _row_extremes(runs, start, order, bbox, k, lo, hi):
    """Leftmost/rightmost column (bbox-relative) of object ``k`` per row; ``hi = -1`` if none."""
    nrows = bbox[k, 2] - bbox[k, 0]
    for r in range(nrows):
        lo[r] = 1 << 62
        hi[r] = -1
    for t in range(start[k], start[k + 1]):
        q = order[t]
        r = runs[q, 0] - bbox[k, 0]
        c0 = runs[q, 1] - bbox[k, 1]
        c1 = runs[q, 2] - 1 - bbox[k, 1]
        if c0 < lo[r]:
            lo[r] = c0
        if c1 > hi[r]:
            hi[r] = c1


@numba.njit(cache=True, nogil=True)
def _per_object(runs, n, bbox, classes, weights, table):
    """Convex area, convex perimeter and skeleton length of every object (scratch reused)."""
    start, order = _runs_by_object(runs, n)
    hmax, wmax = 1, 1
    for k in range(n):
        hmax = max(hmax, bbox[k, 2] - bbox[k, 0])
        wmax = max(wmax, bbox[k, 3] - bbox[k, 1])
    lo = np.empty(hmax, dtype=np.int64)
    hi = np.empty(hmax, dtype=np.int64)
    c_lo = np.empty(hmax, dtype=np.int64)
    c_hi = np.empty(hmax, dtype=np.int64)
    ny = 2 * hmax + 1
    xmin, xmax = np.empty(ny, dtype=np.int64), np.empty(ny, dtype=np.int64)
    xs, ys = np.empty(2 * ny, dtype=np.int64), np.empty(2 * ny, dtype=np.int64)
    hx, hy = np.empty(4 * ny + 1, dtype=np.int64), np.empty(4 * ny + 1, dtype=np.int64)
    mask = np.zeros((hmax + 4, wmax + 4), dtype=np.uint8)
    border = np.zeros((hmax + 4, wmax + 4), dtype=np.uint8)
    w2 = wmax + 2  # flat skeleton scratch of row stride w2
    skel = np.zeros((hmax + 2) * w2, dtype=np.uint8)
    flag = np.zeros((hmax + 2) * w2, dtype=np.uint8)
    cand = np.empty(hmax * wmax, dtype=np.int64)
    dels = np.empty(hmax * wmax, dtype=np.int64)
    first, second = table[0], table[1]
    convex_area = np.zeros(n, dtype=np.int64)
    convex_perim = np.zeros(n, dtype=np.float64)
    skeleton = np.zeros(n, dtype=np.int64)
    for k in range(n):
        nrows = bbox[k, 2] - bbox[k, 0]
        ncols = bbox[k, 3] - bbox[k, 1]
        _row_extremes(runs, start, order, bbox, k, lo, hi)
        nv = _hull_polygon(lo, hi, nrows, xmin, xmax, xs, ys, hx, hy)
        convex_area[k] = _hull_rows(hx, hy, nv, nrows, ncols, c_lo, c_hi)
        convex_perim[k] = _hull_perimeter(c_lo, c_hi, nrows, mask, border, classes, weights)
        for t in range(start[k], start[k + 1]):
            q = order[t]
            row = (runs[q, 0] - bbox[k, 0] + 1) * w2 - bbox[k, 1] + 1
            for c in range(runs[q, 1], runs[q, 2]):
                skel[row + c] = 1
        skeleton[k] = thin_count(skel, w2, nrows, ncols, first, second, flag, cand, dels)
    return convex_area, convex_perim, skeleton


def measure_labels(arr: np.ndarray, max_label: int) -> tuple[np.ndarray, np.ndarray]:
    """All kernels on a checked label image (see :func:`~sthisto.pp.nuclei.measure_arrays`)."""
    runs, labs, lut, n = _row_runs(arr, max_label)
    area, ref, bbox, sums, perim = _accumulate(arr, runs, labs, n, _PERIMETER_CLASS)
    fin = _finalize(area, ref, bbox, sums, perim, _PERIMETER_WEIGHTS)
    convex_area, convex_perim, skeleton = _per_object(runs, n, bbox, _PERIMETER_CLASS, _PERIMETER_WEIGHTS,
                                                      THINNING_TABLE)
    present = np.flatnonzero(lut >= 0).astype(np.int64)
    table = np.column_stack([fin[:, 0:2], bbox.astype(np.float64), fin[:, 2:11], convex_area.astype(np.float64),
                             area / convex_area, convex_perim, skeleton.astype(np.float64)])
    return present, table
