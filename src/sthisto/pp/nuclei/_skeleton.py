"""Skeleton length: the thinning of ``skimage.morphology.skeletonize`` (2-D, ``method="zhang"``).

skimage thins in iterations of two subiterations until nothing changes. In each
subiteration every object pixel is classified by the 8-bit code of its neighbours
(``NW=1, N=2, NE=4, E=8, SE=16, S=32, SW=64, W=128``) and removed, all at once, when its
code is a deletion code of that subiteration. Its deletion codes are not the textbook
Zhang–Suen conditions, so they are listed here; they were derived by comparing this kernel
with ``skimage.morphology.skeletonize`` (scikit-image 0.26) on every 5×5 binary image and
on random shapes, and ``tests/pp/nuclei/test_kernels.py`` checks the equality on random
blobs, thin lines and a real H&E crop.
"""

from __future__ import annotations

import numba
import numpy as np

_FIRST_ONLY = (3, 6, 10, 11, 12, 14, 131, 134, 143, 159, 161, 194, 198, 207, 227, 231, 243)
_SECOND_ONLY = (24, 26, 56, 62, 63, 96, 104, 108, 126, 176, 192, 224, 248, 249, 252)
_BOTH = (7, 15, 28, 30, 31, 40, 60, 112, 120, 124, 130, 135, 160, 193, 195, 199, 225, 240, 241)


def _thinning_table() -> np.ndarray:
    """(2, 256) uint8: 1 where a pixel of that neighbour code is deleted in subiteration 0/1."""
    table = np.zeros((2, 256), dtype=np.uint8)
    table[0, list(_FIRST_ONLY + _BOTH)] = 1
    table[1, list(_SECOND_ONLY + _BOTH)] = 1
    return table


THINNING_TABLE = _thinning_table()


@numba.njit(cache=True, nogil=True, inline="always")
def _neighbour_code(s, i, j):
    return (s[i - 1, j - 1] + 2 * s[i - 1, j] + 4 * s[i - 1, j + 1] + 8 * s[i, j + 1]
            + 16 * s[i + 1, j + 1] + 32 * s[i + 1, j] + 64 * s[i + 1, j - 1] + 128 * s[i, j - 1])


@numba.njit(cache=True, nogil=True)
def thin_count(skel, removed, nrows, ncols, table):
    """Thin the object in ``skel[1:nrows+1, 1:ncols+1]`` and return its skeleton pixel count.

    ``skel`` is a zero-margined uint8 scratch holding the object as 1; it is left all zero.
    ``removed`` is an all-zero uint8 scratch of ``skel``'s shape that marks the deletions of
    one subiteration (deletions are applied together, as skimage does); it is left all zero.
    """
    changed = True
    while changed:
        changed = False
        for sub in range(2):
            n_del = 0
            for i in range(1, nrows + 1):
                for j in range(1, ncols + 1):
                    if skel[i, j] and table[sub, _neighbour_code(skel, i, j)]:
                        removed[i, j] = 1
                        n_del += 1
            if n_del:
                changed = True
                for i in range(1, nrows + 1):
                    for j in range(1, ncols + 1):
                        if removed[i, j]:
                            skel[i, j] = 0
                            removed[i, j] = 0
    count = 0
    for i in range(1, nrows + 1):
        for j in range(1, ncols + 1):
            if skel[i, j]:
                count += 1
                skel[i, j] = 0
    return count
