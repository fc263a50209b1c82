"""The Segmenter protocol and the tile runner seam (map_tiles with a pluggable executor)."""

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.ndimage as ndi

import sthisto as st
from sthisto.pp import nuclei


@dataclass(frozen=True)
class DarkBlobs(nuclei.Segmenter):
    """A toy segmenter: connected components of dark pixels."""

    level: int = 120
    name: str = "dark_blobs"

    def __call__(self, tile):
        return ndi.label(tile.mean(axis=2) < self.level)[0]

    def record(self):
        return {"level": self.level}


def test_a_user_segmenter_plugs_in(synthetic_adata):
    out = st.pp.segment_nuclei(synthetic_adata, method=DarkBlobs(), region="all", tile_size=256, copy=True)
    entry = out.uns["sthisto_nuclei"]
    assert entry["params"]["method"] == "dark_blobs" and entry["params"]["level"] == 120
    assert "sigma_um" not in entry["params"]  # no watershed parameters for another segmenter
    img = synthetic_adata.uns["spatial"]["synthetic"]["images"]["fullres"]
    whole = nuclei.measure(DarkBlobs()(img))
    assert abs(len(entry["nuclei"]) - len(whole)) <= 0.02 * len(whole)  # tiling keeps each blob once


def test_as_segmenter_shorthands():
    assert isinstance(nuclei.as_segmenter("watershed"), nuclei.Watershed)
    labels = np.zeros((4, 4), dtype=np.int32)
    assert isinstance(nuclei.as_segmenter(labels), nuclei.LabelImage)
    seg = nuclei.as_segmenter(lambda t: t[..., 0])
    assert isinstance(seg, nuclei.TileFunction) and seg.name == "callable:<lambda>"
    custom = DarkBlobs()
    assert nuclei.as_segmenter(custom) is custom
    with pytest.raises(ValueError, match="unknown method"):
        nuclei.as_segmenter("cellpose")
    with pytest.raises(TypeError, match="method must be"):
        nuclei.as_segmenter(3.0)
    with pytest.raises(ValueError, match="prepare"):
        nuclei.Watershed()(np.zeros((8, 8, 3), np.uint8))


class CountingExecutor:
    """Only ``submit``, like a dask.distributed Client; records how many tasks were in flight."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(2)
        self.in_flight = self.peak = self.calls = 0
        self.lock = threading.Lock()

    def submit(self, fn, *args) -> Future:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        future = self.pool.submit(fn, *args)

        def done(_):
            with self.lock:
                self.in_flight -= 1

        future.add_done_callback(done)
        return future


def test_map_tiles_bounds_the_tasks_in_flight():
    ex = CountingExecutor()
    reads = []

    def task(i):
        reads.append(i)
        return (i,)

    out = list(nuclei.map_tiles(lambda i: i * i, [(lambda i=i: task(i)) for i in range(20)],
                                executor=ex, max_in_flight=3))
    assert out == [i * i for i in range(20)] and reads == list(range(20))
    assert ex.calls == 20 and ex.peak <= 3
    assert list(nuclei.map_tiles(lambda i: -i, [(lambda i=i: (i,)) for i in range(4)])) == [0, -1, -2, -3]


def test_segment_image_on_a_given_executor(synthetic_adata):
    img = synthetic_adata.uns["spatial"]["synthetic"]["images"]["fullres"]
    kw = {"microns_per_pixel": 1.0, "tile_size": 256, "threshold": 0.06}
    ref = nuclei.segment_image(img, **kw)
    ex = CountingExecutor()
    other = nuclei.segment_image(img, executor=ex, n_jobs=2, **kw)
    np.testing.assert_array_equal(ref.to_numpy(), other.to_numpy())
    assert ex.calls == len(nuclei.tile_windows(img.shape[:2], 256)) and ex.peak <= 4
