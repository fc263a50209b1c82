"""Numba kernels of the GO similarity (imported lazily: only when a similarity is computed)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def topk_kernel(blk, start, k, idx, val):  # noqa: D103
    # k largest off-diagonal entries per row, sorted descending (ties: lower column first)
    for r in range(blk.shape[0]):
        row = blk[r]
        vi = np.full(k, -np.inf)
        ii = np.full(k, -1, dtype=np.int64)
        self_col = start + r
        for j in range(row.shape[0]):
            if j == self_col:
                continue
            v = row[j]
            if v > vi[k - 1] or ii[k - 1] < 0:
                pos = k - 1
                while pos > 0 and (v > vi[pos - 1] or ii[pos - 1] < 0):
                    vi[pos] = vi[pos - 1]
                    ii[pos] = ii[pos - 1]
                    pos -= 1
                vi[pos] = v
                ii[pos] = j
        val[r] = vi
        idx[r] = ii
