"""Numba kernels of :func:`~sthisto.pp.nuclei.measure` (one pass per job, no loop over objects in Python).

- :func:`_row_runs` is the one scanner of the label image: it lists the horizontal runs of
  equal labels (row, first column, end column, object). Every later pass walks the runs.
- :func:`_accumulate`: per object area, bounding box, integer moment sums (closed forms per
  run, exact in int64) and perimeter codes → :func:`_finalize` gives skimage's centroid,
  axes, eccentricity, orientation, extent, perimeter, circularity and aspect ratio.
- :func:`_border_code` is the one border-code helper: the 3×3 code of a border pixel that
  ``skimage.measure.perimeter(neighborhood=4)`` weights by 1, √2 or (1 + √2)/2. It serves the
  object's perimeter and the perimeter of its convex hull image.
- Convex hull: the leftmost and rightmost pixel of each row of an object are the only
  candidates; the hull of their pixel-edge midpoints (skimage's ``offset_coordinates``) is
  built with a monotone chain in exact integer (doubled) coordinates and rasterised row by
  row, giving the pixel set that ``convex_hull_image`` selects (pixel centres inside or on
  the hull) → convex area, solidity, convex perimeter.
- Skeleton length: the pixels left by the two-subiteration thinning of
  ``skimage.morphology.skeletonize`` (:mod:`._skeleton`), run on each object's own
  bounding box.

All kernels are compiled with ``cache=True`` and ``nogil=True`` so tiles can be measured
in parallel threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._skeleton import THINNING_TABLE, thin_count

# skimage.measure.perimeter (neighborhood=4): the border code of a border pixel selects a
# weight 1, sqrt(2) or (1 + sqrt(2)) / 2; counted per class as integers
_PERIMETER_CLASS = np.full(50, -1, dtype=np.int64)
_PERIMETER_CLASS[[5, 7, 15, 17, 25, 27]] = 0
_PERIMETER_CLASS[[21, 33]] = 1
_PERIMETER_CLASS[[13, 23]] = 2
_PERIMETER_WEIGHTS = np.array([1.0, math.sqrt(2.0), (1.0 + math.sqrt(2.0)) / 2.0])


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


@numba.njit(cache=True, nogil=True, inline="always")
def _border_code(b, i, j, v):
    """Skimage's perimeter code of pixel ``(i, j)`` of the border image ``b`` (value ``v``).

    ``1 + 2 × (4-neighbours on the border) + 10 × (diagonal neighbours on the border)``; the
    caller guarantees ``b[i, j] == v`` and a margin of one pixel around ``(i, j)``.
    """
    return (1 + 2 * ((b[i - 1, j] == v) + (b[i + 1, j] == v) + (b[i, j - 1] == v) + (b[i, j + 1] == v))
            + 10 * ((b[i - 1, j - 1] == v) + (b[i - 1, j + 1] == v)
                    + (b[i + 1, j - 1] == v) + (b[i + 1, j + 1] == v)))


@numba.njit(cache=True, nogil=True)
def _border_labels(labels, runs, labs):
    """Zero-padded (H+2, W+2) image holding the label of every border pixel, else 0.

    A border pixel has a 4-neighbour with another label or lies on the image edge, exactly
    the pixels that ``binary_erosion`` removes in :func:`skimage.measure.perimeter`.
    """
    h, w = labels.shape
    out = np.zeros((h + 2, w + 2), dtype=labels.dtype)
    for r in range(runs.shape[0]):
        i, j0, j1 = runs[r, 0], runs[r, 1], runs[r, 2]
        lab = labs[r]
        for j in range(j0, j1):
            if (j == j0 or j == j1 - 1 or i == 0 or i == h - 1
                    or labels[i - 1, j] != lab or labels[i + 1, j] != lab):
                out[i + 1, j + 1] = lab
    return out


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
def _hull_polygon(lo, hi, nrows, xmin, xmax, xs, ys, hx, hy):
    """Convex hull (Andrew's monotone chain) of the pixel-edge midpoints of one object.

    Coordinates are doubled so that they are integers: pixel ``(r, c)`` contributes
    ``(2c ± 1, 2r)`` and ``(2c, 2r ± 1)`` (skimage's ``offset_coordinates``), relative to
    the bounding box. Only the leftmost and rightmost point of each ``y`` can be a hull
    vertex, so the candidates come out sorted by ``(y, x)`` without a sort. Collinear
    points are dropped; the polygon turns left in ``(x, y)``, so the closed hull is
    ``{p : cross(v[i+1] - v[i], p - v[i]) >= 0}``. ``xmin, xmax`` (``2 nrows + 1``),
    ``xs, ys`` (twice that) and ``hx, hy`` (four times that, plus one) are scratch; the
    vertices are written to ``hx[:m], hy[:m]`` and ``m`` is returned.
    """
    ny = 2 * nrows + 1  # y = -1 .. 2 * nrows - 1, stored at y + 1
    for t in range(ny):
        xmin[t] = 2**62
        xmax[t] = -(2**62)
    for r in range(nrows):
        c1 = hi[r]
        if c1 < 0:
            continue
        c0 = lo[r]
        xmin[2 * r + 1] = min(xmin[2 * r + 1], 2 * c0 - 1)
        xmax[2 * r + 1] = max(xmax[2 * r + 1], 2 * c1 + 1)
        for t in (2 * r, 2 * r + 2):
            xmin[t] = min(xmin[t], 2 * c0)
            xmax[t] = max(xmax[t], 2 * c1)
    nu = 0
    for t in range(ny):
        if xmax[t] < xmin[t]:
            continue
        xs[nu] = xmin[t]
        ys[nu] = t - 1
        nu += 1
        if xmax[t] != xmin[t]:
            xs[nu] = xmax[t]
            ys[nu] = t - 1
            nu += 1
    m = 0
    floor = 2
    for t in range(2 * nu - 1):  # one chain forwards, then the other one back
        q = t if t < nu else 2 * nu - 2 - t
        if t == nu:
            floor = m + 1  # the second chain never pops the first one
        while m >= floor and ((hx[m - 1] - hx[m - 2]) * (ys[q] - hy[m - 2])
                              - (hy[m - 1] - hy[m - 2]) * (xs[q] - hx[m - 2])) <= 0:
            m -= 1
        hx[m] = xs[q]
        hy[m] = ys[q]
        m += 1
    return m - 1  # the last point closes the polygon on the first


@numba.njit(cache=True, nogil=True)
def _hull_rows(hx, hy, nv, nrows, ncols, c_lo, c_hi):
    """Columns ``c_lo[r]..c_hi[r]`` of the pixel centres inside or on the closed hull, per row.

    What ``grid_points_in_poly(...) >= 1`` selects in ``skimage.morphology.convex_hull_image``,
    found with exact integer half-plane bounds, from the ``nv`` vertices ``hx, hy``;
    returns the number of hull pixels.
    """
    total = 0
    for r in range(nrows):
        y = 2 * r
        lo_, hi_ = 0, ncols - 1
        for e in range(nv):
            x0, y0 = hx[e], hy[e]
            x1, y1 = hx[(e + 1) % nv], hy[(e + 1) % nv]
            dx, dy = x1 - x0, y1 - y0
            rhs = dx * (y - y0) + dy * x0  # inside: dy * x <= rhs, with x = 2c
            if dy > 0:
                hi_ = min(hi_, rhs // (2 * dy))
            elif dy < 0:
                lo_ = max(lo_, -(rhs // (-2 * dy)))
            elif dx * (y - y0) < 0:
                hi_ = -1
        c_lo[r] = lo_
        c_hi[r] = hi_
        if hi_ >= lo_:
            total += hi_ - lo_ + 1
    return total


@numba.njit(cache=True, nogil=True)
def _hull_perimeter(c_lo, c_hi, nrows, mask, border, classes, weights):
    """Return skimage's perimeter of the hull image given by its row intervals ``c_lo..c_hi``.

    ``mask`` and ``border`` are all-zero uint8 scratches with a margin of 2 (left all zero):
    the hull is drawn, its border marked, and :func:`_border_code` classifies the border
    pixels, visiting only the hull's rows and columns.
    """
    for r in range(nrows):
        for c in range(c_lo[r], c_hi[r] + 1):
            mask[r + 2, c + 2] = 1
    for r in range(nrows):
        i = r + 2
        for c in range(c_lo[r], c_hi[r] + 1):
            j = c + 2
            if not (mask[i - 1, j] and mask[i + 1, j] and mask[i, j - 1] and mask[i, j + 1]):
                border[i, j] = 1
    counts = np.zeros(3, dtype=np.int64)
    for r in range(nrows):
        for c in range(c_lo[r], c_hi[r] + 1):
            if border[r + 2, c + 2]:
                k = classes[_border_code(border, r + 2, c + 2, 1)]
                if k >= 0:
                    counts[k] += 1
    for r in range(nrows):
        for c in range(c_lo[r], c_hi[r] + 1):
            mask[r + 2, c + 2] = 0
            border[r + 2, c + 2] = 0
    return counts[0] * weights[0] + counts[1] * weights[1] + counts[2] * weights[2]


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
