"""Convex hull features of one object from its row extremes (exact integer arithmetic).

The leftmost and rightmost pixel of each row are the only candidates for hull vertices;
the hull of their pixel-edge midpoints (skimage's ``offset_coordinates``) is built with a
monotone chain in doubled integer coordinates and rasterised row by row, giving the pixel
set that ``skimage.morphology.convex_hull_image`` selects (pixel centres inside or on the
hull): convex area, and with :func:`._perimeter._border_code` the convex perimeter.
"""

from __future__ import annotations

import numba
import numpy as np

from ._perimeter import _border_code


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
