"""The Numba thinning equals skimage.morphology.skeletonize, image by image."""

import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.morphology import skeletonize

from sthisto.pp.nuclei._skeleton import THINNING_TABLE, thin_count


def _numba_skeleton_pixels(mask: np.ndarray) -> int:
    h, w = mask.shape
    w2 = w + 2
    s = np.zeros((h + 2) * w2, dtype=np.uint8)
    s.reshape(h + 2, w2)[1:-1, 1:-1] = mask
    flag = np.zeros_like(s)
    cand = np.empty(h * w, dtype=np.int64)
    dels = np.empty(h * w, dtype=np.int64)
    n = thin_count(s, w2, h, w, THINNING_TABLE[0], THINNING_TABLE[1], flag, cand, dels)
    assert not s.any() and not flag.any()  # scratch left clean for the next object
    return n


@pytest.mark.parametrize("seed", range(3))
def test_random_images_and_blobs(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(300):
        h, w = rng.integers(2, 14, 2)
        mask = rng.random((h, w)) < rng.uniform(0.3, 0.95)
        if rng.random() < 0.5:
            field = ndi.gaussian_filter(rng.random((h + 6, w + 6)), rng.uniform(0.7, 2.0))[3:-3, 3:-3]
            mask = field > np.quantile(field, rng.uniform(0.2, 0.7))
        assert _numba_skeleton_pixels(mask) == np.count_nonzero(skeletonize(mask)), mask.astype(int)


def test_simple_shapes():
    assert _numba_skeleton_pixels(np.ones((1, 1), bool)) == 1
    assert _numba_skeleton_pixels(np.ones((1, 9), bool)) == 9  # a line is its own skeleton
    disk = np.hypot(*np.mgrid[-8:9, -8:9]) <= 8
    assert _numba_skeleton_pixels(disk) == np.count_nonzero(skeletonize(disk)) <= 3
    square = np.ones((12, 12), bool)
    assert _numba_skeleton_pixels(square) == np.count_nonzero(skeletonize(square))
