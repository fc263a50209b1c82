"""Tiling: windows over a slide, the tile runner, and whole-image segmentation.

The image is processed in tiles of ``tile_size`` pixels read with ``overlap`` pixels of
context on each side; every nucleus is kept exactly once, by the tile whose core holds its
centroid. Tiles are handed to workers one at a time (at most two per worker in flight), and
each worker reads its own tile through the image's :class:`~sthisto._region.Region` (an
in-memory image is read tile by tile by the caller), so memory-mapped or dask images far
larger than RAM can be processed. Where the tiles run (the caller, threads, processes, a
``dask.distributed`` client) is the runner of :mod:`sthisto.pp._parallel`;
:func:`map_tiles` is re-exported from there.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import numpy as np
import pandas as pd

from sthisto._region import Region
from sthisto._settings import progress
from sthisto._validate import integer, number, rgb_image
from sthisto.pp._parallel import map_tiles, runner, tile_input, window_name

from ._measure import measure
from ._params import WatershedParams
from ._segmenters import PASSTHROUGH, LabelImage, Segmenter, as_segmenter

Window = tuple[int, int, int, int]  # y0, x0, y1, x1 (exclusive)


def tile_windows(
    shape: tuple[int, int],
    tile_size: int,
    *,
    spots_xy: np.ndarray | None = None,
    radius: float = 0.0,
) -> list[Window]:
    """Core windows ``(y0, x0, y1, x1)`` of a tile grid, optionally only those near spots.

    With ``spots_xy`` (``(n, 2)`` x, y pixels) only tiles within ``radius`` pixels of a spot
    centre are returned.

    Returns
    -------
    List of windows in raster order.
    """
    h, w = shape
    ys = np.arange(0, h, tile_size)
    xs = np.arange(0, w, tile_size)
    wins = [(int(y), int(x), int(min(y + tile_size, h)), int(min(x + tile_size, w))) for y in ys for x in xs]
    if spots_xy is None:
        return wins
    arr = np.asarray(wins, dtype=np.float64)
    keep = np.zeros(len(wins), dtype=bool)
    for start in range(0, len(spots_xy), 4096):
        sx = spots_xy[start : start + 4096, 0][:, None]
        sy = spots_xy[start : start + 4096, 1][:, None]
        dx = np.maximum(np.maximum(arr[None, :, 1] - sx, 0), sx - arr[None, :, 3])
        dy = np.maximum(np.maximum(arr[None, :, 0] - sy, 0), sy - arr[None, :, 2])
        keep |= ((dx**2 + dy**2) <= radius**2).any(axis=0)
    return [win for win, k in zip(wins, keep, strict=True) if k]


def crop_window(core: Window, overlap: int, shape: tuple[int, int]) -> Window:
    """Grow the core window by ``overlap`` pixels on each side, clipped to the image."""
    y0, x0, y1, x1 = core
    return (max(0, y0 - overlap), max(0, x0 - overlap), min(shape[0], y1 + overlap), min(shape[1], x1 + overlap))


def measure_tile(tile, core: Window, crop: Window, segmenter: Segmenter, return_labels: bool, rgb: bool = False):
    """Segment one crop and measure the nuclei whose centroid lies in its core (a worker's job).

    Parameters
    ----------
    tile
        The crop: an array, or what :func:`~sthisto.pp._parallel.tile_input` gives
        (``read()`` returns the pixels; the worker reads its own tile).
    core, crop
        The tile's core window and the crop read around it.
    segmenter
        A prepared :class:`Segmenter`.
    return_labels
        Also return the crop's labels.
    rgb
        The crop is of the H&E image (only its first three channels are segmented).

    Returns
    -------
    ``(table, labels)``: the :func:`measure` table in slide coordinates and, with
    ``return_labels``, the crop's labels renumbered 1..n in table order (else ``None``).
    """
    tile = tile.read() if hasattr(tile, "read") else np.asarray(tile)
    if rgb:
        tile = np.ascontiguousarray(tile[..., :3])
    labels = segmenter(tile)
    table = measure(labels, offset=(crop[0], crop[1]))
    y0, x0, y1, x1 = core
    keep = ((table["centroid_y"] >= y0) & (table["centroid_y"] < y1)
            & (table["centroid_x"] >= x0) & (table["centroid_x"] < x1)).to_numpy()
    table = table[keep].reset_index(drop=True)
    local = None
    if return_labels:
        lut = np.zeros(int(np.max(labels, initial=0)) + 1, dtype=np.int32)
        lut[table["label"].to_numpy()] = np.arange(1, len(table) + 1, dtype=np.int32)
        local = lut[labels]
    return table, local


def segment_image(
    image,
    *,
    microns_per_pixel: float,
    method: Any = "watershed",
    windows: list[Window] | None = None,
    tile_size: int = 2048,
    overlap: int = 64,
    threshold: float | None = None,
    threshold_bbox: Window | None = None,
    n_jobs: int | None = None,
    backend: str = "threads",
    executor: Executor | None = None,
    client: Any = None,
    labels_out: np.ndarray | None = None,
    source: str = "the H&E image",
    **watershed_params: Any,
) -> pd.DataFrame:
    """Segment and measure the nuclei of a whole image, tile by tile.

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8 RGB array: numpy, ``np.memmap`` or dask array (read tile by tile).
    microns_per_pixel
        Pixel size of ``image``.
    method
        A :class:`Segmenter`, or a shorthand for one (:func:`as_segmenter`): ``"watershed"``,
        a callable mapping an RGB tile to an ``(H, W)`` label image, or a precomputed
        ``(H, W)`` integer label image of the whole slide.
    windows
        Core windows to process (default: all tiles, see :func:`tile_windows`).
    tile_size, overlap
        Tile core size and context read around it, in pixels. ``overlap`` must exceed the
        largest nucleus diameter for the exactly-once rule to measure whole nuclei.
    threshold, threshold_bbox
        Hematoxylin threshold of the watershed; ``None`` estimates it once with
        :func:`hematoxylin_threshold` over ``threshold_bbox`` (default: the bounding box of
        ``windows``).
    n_jobs
        Workers; ``None`` uses ``sthisto.settings.n_jobs``.
    backend
        ``"threads"`` (default; the kernels release the GIL) or ``"processes"``.
    executor
        Run the tiles on this executor instead (``submit(fn, *args) -> future``, see
        :func:`map_tiles`); ``n_jobs`` then only bounds the tiles in flight.
    client
        A ``dask.distributed.Client`` (or ``"auto"``: the client in force) whose workers run
        the tiles, each reading its own tile of a memory-mapped or lazy image; the result
        equals the local run.
    labels_out
        Optional writable ``(H, W)`` integer array (e.g. ``np.lib.format.open_memmap``) that
        receives the label image with the returned ``id`` values.
    source
        What the image is, named when a tile cannot be read.
    **watershed_params
        Fields of :class:`WatershedParams` overriding those of the watershed.

    Returns
    -------
    Per-nucleus table (pixel units, full-image coordinates): ``id`` (1..n), the columns of
    :func:`measure` and ``x``/``y`` (centroid), in tile raster order. ``table.attrs`` holds
    ``method`` and the segmenter's recorded parameters (``threshold`` for the watershed).
    """
    tile_size, overlap = tile_arguments(tile_size, overlap)
    microns_per_pixel = number(microns_per_pixel, "microns_per_pixel", positive=True)
    segmenter = resolve_segmenter(method, watershed_params, threshold)
    tiles_of = segmenter.source(image)
    rgb = tiles_of is image  # tiles of the H&E image itself (else e.g. a label image)
    if rgb:
        rgb_image(image, where="the H&E image")
    shape = tuple(int(s) for s in image.shape[:2])
    if windows is None:
        windows = tile_windows(shape, tile_size)
    if windows:
        if threshold_bbox is None:
            arr = np.asarray(windows)
            threshold_bbox = (arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
        segmenter = segmenter.prepare(image, microns_per_pixel=float(microns_per_pixel), bbox=threshold_bbox)
    want_labels = labels_out is not None
    region = Region(tiles_of, source=source if rgb else "the label image (method=)")
    n = len(windows)
    tables, next_id = [], 1
    with runner(client=client, n_jobs=n_jobs, backend=backend, n_tasks=n, executor=executor) as run:
        # a LabelImage's tiles are its labels, read from the region: send the identity, not the labels
        shared = run.share(PASSTHROUGH if isinstance(segmenter, LabelImage) else segmenter) if n else segmenter

        def task(core):
            crop = crop_window(core, overlap, shape)
            return tile_input(region, crop, run), core, crop, shared, want_labels, rgb

        results = map_tiles(measure_tile, [(lambda core=core: task(core)) for core in windows], executor=run,
                            max_in_flight=2 * run.slots,
                            names=lambda i: window_name("tile", i, n, crop_window(windows[i], overlap, shape)))
        for (table, local), core in zip(progress(results, desc="nuclei tiles", total=n), windows, strict=True):
            table.insert(0, "id", np.arange(next_id, next_id + len(table), dtype=np.int64))
            if want_labels and len(table):
                y0, x0, y1, x1 = crop_window(core, overlap, shape)
                region_out = labels_out[y0:y1, x0:x1]
                hit = local > 0
                region_out[hit] = local[hit] + (next_id - 1)
            next_id += len(table)
            tables.append(table)
    table = pd.concat(tables, ignore_index=True) if tables else measure(np.zeros((1, 1), np.int32))
    if "id" not in table:
        table.insert(0, "id", np.zeros(0, dtype=np.int64))
    table = table.drop(columns="label")
    table["x"] = table["centroid_x"]
    table["y"] = table["centroid_y"]
    table.attrs = {"method": segmenter.name, **segmenter.record()}
    return table


def tile_arguments(tile_size: Any, overlap: Any) -> tuple[int, int]:
    """Check ``tile_size`` (an integer >= 16) and ``overlap`` (an integer, 0 <= overlap < tile_size)."""
    tile_size = integer(tile_size, "tile_size", minimum=16, fix="give the tile side in pixels, e.g. 2048")
    overlap = integer(overlap, "overlap", minimum=0, maximum=tile_size - 1,
                      fix="the context read around a tile must be smaller than the tile (raise tile_size)")
    return tile_size, overlap


def resolve_segmenter(method: Any, watershed_params: dict[str, Any], threshold: float | None) -> Segmenter:
    """Return the segmenter of ``method``, with watershed keyword overrides and threshold applied.

    Overrides given with another segmenter are reported (they would be ignored). A user's
    segmenter comes back wrapped in :class:`~._segmenters.Checked`, so a tile it labels
    wrongly raises an error naming it.
    """
    from sthisto._logging import logger

    from ._segmenters import Watershed, checked

    base = as_segmenter(method)
    if isinstance(base, Watershed):
        params = base.params.replace(**watershed_params) if watershed_params else base.params
        return Watershed(params, threshold if threshold is not None else base.threshold)
    WatershedParams().replace(**watershed_params)  # unknown names still raise
    ignored = sorted(watershed_params) + (["threshold"] if threshold is not None else [])
    if ignored:
        logger.warning("%s apply to the built-in watershed only and are ignored for the segmenter %r",
                       ", ".join(ignored), base.name)
    return checked(base)
