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
def thin_count(skel, flag, ci, cj, di, dj, nrows, ncols, table):
    """Thin the object in ``skel[1:nrows+1, 1:ncols+1]`` and return its skeleton pixel count.

    ``skel`` is a zero-margined uint8 scratch holding the object as 1, ``flag`` an all-zero
    uint8 scratch of the same shape, ``ci, cj, di, dj`` int64 scratches of at least
    ``nrows * ncols`` entries; ``skel`` and ``flag`` are left all zero.

    Only pixels with a 4-neighbour in the background are candidates: no deletion code has
    all four 4-neighbours set. Deletions of a subiteration are decided on the state before
    it and applied together, as skimage does; a deleted pixel's 4-neighbours become
    candidates.
    """
    n_cand = 0
    count = 0
    for i in range(1, nrows + 1):
        for j in range(1, ncols + 1):
            if skel[i, j]:
                count += 1
                if not (skel[i - 1, j] and skel[i + 1, j] and skel[i, j - 1] and skel[i, j + 1]):
                    ci[n_cand] = i
                    cj[n_cand] = j
                    flag[i, j] = 1
                    n_cand += 1
    quiet = 0  # consecutive subiterations without a deletion
    sub = 0
    while quiet < 2:  # two quiet subiterations in a row: nothing can change any more
        n_del = 0
        for t in range(n_cand):
            i, j = ci[t], cj[t]
            if table[sub, _neighbour_code(skel, i, j)]:
                di[n_del] = i
                dj[n_del] = j
                n_del += 1
        if n_del:
            quiet = 0
            for t in range(n_del):
                skel[di[t], dj[t]] = 0
                flag[di[t], dj[t]] = 0
            count -= n_del
            m = 0
            for t in range(n_cand):  # keep the candidates still present
                if skel[ci[t], cj[t]]:
                    ci[m] = ci[t]
                    cj[m] = cj[t]
                    m += 1
            n_cand = m
            for t in range(n_del):  # the 4-neighbours of deleted pixels are now on the border
                i, j = di[t], dj[t]
                for d in range(4):
                    ii = i + (d == 1) - (d == 0)
                    jj = j + (d == 3) - (d == 2)
                    if skel[ii, jj] and not flag[ii, jj]:
                        flag[ii, jj] = 1
                        ci[n_cand] = ii
                        cj[n_cand] = jj
                        n_cand += 1
        else:
            quiet += 1
        sub = 1 - sub
    for t in range(n_cand):
        flag[ci[t], cj[t]] = 0
    for i in range(1, nrows + 1):
        for j in range(1, ncols + 1):
            skel[i, j] = 0
    return count
