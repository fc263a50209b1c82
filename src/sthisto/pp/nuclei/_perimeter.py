"""skimage's perimeter (``neighborhood=4``): border pixels and the one border-code helper.

A border pixel of an object has a 4-neighbour outside it or lies on the image edge (the
pixels ``binary_erosion`` removes in :func:`skimage.measure.perimeter`). Its 3×3 code,
``1 + 2 × (4-neighbours on the border) + 10 × (diagonal neighbours on the border)``, selects
a weight 1, √2 or (1 + √2)/2. Used for an object's perimeter and for the perimeter of its
convex hull image.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# the border code of a border pixel selects a
# weight 1, sqrt(2) or (1 + sqrt(2)) / 2; counted per class as integers
_PERIMETER_CLASS = np.full(50, -1, dtype=np.int64)
_PERIMETER_CLASS[[5, 7, 15, 17, 25, 27]] = 0
_PERIMETER_CLASS[[21, 33]] = 1
_PERIMETER_CLASS[[13, 23]] = 2
_PERIMETER_WEIGHTS = np.array([1.0, math.sqrt(2.0), (1.0 + math.sqrt(2.0)) / 2.0])


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
