"""Re-derive the deletion codes of ``sthisto.pp.nuclei._skeleton`` from skimage's behaviour.

``skimage.morphology.skeletonize`` (2-D) thins with a table of deletion codes that is not
the textbook Zhang–Suen one. This script finds the table by black-box comparison: start from
Zhang–Suen, thin a pool of random binary images and blobs with the candidate table and with
skimage, and change, one at a time, the code that removes most mismatches (among the codes
met while thinning a mismatching image, else among all codes), until every image agrees.
It prints the three code lists of ``_skeleton.py``; run it after a scikit-image upgrade if
``tests/pp/nuclei/test_skeleton.py`` fails (a few minutes on one core):

    python benchmarks/derive_thinning_table.py
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.ndimage as ndi
from skimage.morphology import skeletonize


@numba.njit(cache=True)
def thin(img, table, seen):
    """Thin ``img`` with ``table[code] in {0, 1 (first), 2 (second), 3 (both)}``; mark codes met."""
    h, w = img.shape
    s = np.zeros((h + 2, w + 2), np.uint8)
    s[1:-1, 1:-1] = img
    nxt = s.copy()
    removed = True
    while removed:
        removed = False
        for sub in range(2):
            for i in range(1, h + 1):
                for j in range(1, w + 1):
                    if s[i, j]:
                        code = (s[i - 1, j - 1] + 2 * s[i - 1, j] + 4 * s[i - 1, j + 1] + 8 * s[i, j + 1]
                                + 16 * s[i + 1, j + 1] + 32 * s[i + 1, j] + 64 * s[i + 1, j - 1] + 128 * s[i, j - 1])
                        seen[code] = True
                        if table[code] & (1 << sub):
                            nxt[i, j] = 0
                            removed = True
            s[:, :] = nxt
    return s[1:-1, 1:-1].copy()


def zhang_suen() -> np.ndarray:
    table = np.zeros(256, np.uint8)
    for code in range(256):
        nw, n, ne, e, se, s, sw, w = ((code >> k) & 1 for k in range(8))
        ring = [n, ne, e, se, s, sw, w, nw]
        b = sum(ring)
        a = sum(ring[k] == 0 and ring[(k + 1) % 8] == 1 for k in range(8))
        if 2 <= b <= 6 and a == 1:
            table[code] = (n * e * s == 0 and e * s * w == 0) + 2 * (n * e * w == 0 and n * s * w == 0)
    return table


def pool(seed: int = 0, n: int = 3000) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    images = [(rng.random(rng.integers(3, 9, 2)) < rng.uniform(0.3, 0.9)).astype(np.uint8) for _ in range(n)]
    for _ in range(n):
        shape = rng.integers(8, 30, 2)
        field = ndi.gaussian_filter(rng.random(shape), rng.uniform(0.6, 2.5))
        images.append((field > np.quantile(field, rng.uniform(0.3, 0.8))).astype(np.uint8))
    return images


def main() -> None:
    images = pool()
    refs = [skeletonize(im.astype(bool)).astype(np.uint8) for im in images]
    seen = np.zeros(256, np.bool_)

    def mismatches(table):
        return [k for k, im in enumerate(images) if not np.array_equal(thin(im, table, seen), refs[k])]

    table = zhang_suen()
    bad = mismatches(table)
    while bad:
        met = np.zeros(256, np.bool_)
        thin(images[bad[0]], table, met)
        best = (len(bad), None)
        for codes in (np.flatnonzero(met), np.arange(256)):
            for code in codes:
                for value in range(4):
                    if value != table[code]:
                        trial = table.copy()
                        trial[code] = value
                        n = len(mismatches(trial))
                        if n < best[0]:
                            best = (n, (code, value))
            if best[1] is not None:
                break
        if best[1] is None:
            raise SystemExit(f"no single change helps; {len(bad)} images still differ")
        table[best[1][0]] = best[1][1]
        bad = mismatches(table)
        print(f"code {best[1][0]} -> {best[1][1]}: {len(bad)} images differ")
    for name, value in (("_FIRST_ONLY", 1), ("_SECOND_ONLY", 2), ("_BOTH", 3)):
        print(name, "=", tuple(int(c) for c in np.flatnonzero(table == value)))


if __name__ == "__main__":
    main()
