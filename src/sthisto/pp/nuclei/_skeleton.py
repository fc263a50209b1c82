"""Skeleton length: the thinning of ``skimage.morphology.skeletonize`` (2-D, ``method="zhang"``).

skimage thins in iterations of two subiterations until nothing changes. In each
subiteration every object pixel is classified by the 8-bit code of its neighbours
(``NW=1, N=2, NE=4, E=8, SE=16, S=32, SW=64, W=128``) and removed, all at once, when its
code is a deletion code of that subiteration. Its deletion codes are not the textbook
Zhang–Suen conditions, so they are listed here; they were found by black-box comparison of
this kernel with ``skimage.morphology.skeletonize`` (scikit-image 0.26) on thousands of
random binary images and blobs, starting from the Zhang–Suen codes and correcting the codes
on which the outputs differed. ``tests/pp/nuclei/test_skeleton.py`` and ``test_kernels.py``
check the equality on random images, blobs, thin lines and a real H&E crop.
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


@numba.njit(cache=True, nogil=True)
def thin_count(s, w2, nrows, ncols, first, second, flag, cand, dels):
    """Thin one object and return its skeleton pixel count.

    ``s`` is a flat uint8 scratch holding the object as 1 in rows ``1..nrows`` and columns
    ``1..ncols`` of a zero-margined grid of row stride ``w2`` (≥ ``ncols + 2``); ``flag`` is
    an all-zero uint8 scratch of the same size and ``cand``, ``dels`` int64 scratches of at
    least ``nrows * ncols`` entries. ``s`` and ``flag`` are left all zero. ``first`` and
    ``second`` are the rows of :data:`THINNING_TABLE`.

    Only pixels with a 4-neighbour in the background are candidates: no deletion code has
    all four 4-neighbours set. Deletions of a subiteration are decided on the state before
    it and applied together, as skimage does; a deleted pixel's 4-neighbours become
    candidates.
    """
    n_cand = 0
    count = 0
    for i in range(1, nrows + 1):
        for p in range(i * w2 + 1, i * w2 + ncols + 1):
            if s[p]:
                count += 1
                if not (s[p - w2] and s[p + w2] and s[p - 1] and s[p + 1]):
                    cand[n_cand] = p
                    flag[p] = 1
                    n_cand += 1
    quiet = 0  # consecutive subiterations without a deletion
    sub = 0
    while quiet < 2:  # two quiet subiterations in a row: nothing can change any more
        table = first if sub == 0 else second
        n_del = 0
        for t in range(n_cand):
            p = cand[t]
            code = (s[p - w2 - 1] + 2 * s[p - w2] + 4 * s[p - w2 + 1] + 8 * s[p + 1]
                    + 16 * s[p + w2 + 1] + 32 * s[p + w2] + 64 * s[p + w2 - 1] + 128 * s[p - 1])
            if table[code]:
                dels[n_del] = p
                n_del += 1
        if n_del:
            quiet = 0
            for t in range(n_del):
                s[dels[t]] = 0
                flag[dels[t]] = 0
            count -= n_del
            m = 0
            for t in range(n_cand):  # keep the candidates still present
                if s[cand[t]]:
                    cand[m] = cand[t]
                    m += 1
            n_cand = m
            for t in range(n_del):  # the 4-neighbours of deleted pixels are now on the border
                p = dels[t]
                for q in (p - w2, p + w2, p - 1, p + 1):
                    if s[q] and not flag[q]:
                        flag[q] = 1
                        cand[n_cand] = q
                        n_cand += 1
        else:
            quiet += 1
        sub = 1 - sub
    for t in range(n_cand):
        flag[cand[t]] = 0
    for i in range(1, nrows + 1):
        for p in range(i * w2 + 1, i * w2 + ncols + 1):
            s[p] = 0
    return count
