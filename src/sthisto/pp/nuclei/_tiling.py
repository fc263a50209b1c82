"""Nuclei segmentation of H&E images: tiled, bounded in memory, parallel.

The default method is classical: hematoxylin by colour deconvolution (``rgb2hed``), a
Gaussian smoothing, a global Otsu threshold (estimated once per section, so every tile uses
the same one), morphological cleanup, then a distance-transform watershed that splits
touching nuclei. All sizes are given in microns and converted with the image's pixel size.

The image is processed in tiles of ``tile_size`` pixels read with ``overlap`` pixels of
context on each side; every nucleus is kept exactly once, by the tile whose core holds its
centroid. Only one tile per worker is in memory at a time, so memory-mapped or dask images
far larger than RAM can be processed.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._image import image_and_scale, microns_per_pixel, spot_diameter_px
from sthisto._logging import logger, progress
from sthisto._settings import settings
from sthisto._utils import copy_or_self, save_data
from sthisto._validate import library_id as _library_id
from sthisto._validate import rgb_image, spatial_coords

from ._kernels import hematoxylin, measure

WATERSHED_DEFAULTS = {
    "sigma_um": 1.0,
    "min_distance_um": 3.0,
    "min_area_um2": 10.0,
    "max_area_um2": 500.0,
    "opening_um": 1.0,
    "peak_smoothing_um": 0.5,
}


def segment_tile(
    tile: np.ndarray,
    *,
    microns_per_pixel: float,
    threshold: float | None = None,
    sigma_um: float = 1.0,
    min_distance_um: float = 3.0,
    min_area_um2: float = 10.0,
    max_area_um2: float | None = 500.0,
    opening_um: float = 1.0,
    peak_smoothing_um: float = 0.5,
) -> np.ndarray:
    """Segment nuclei in one RGB tile with the hematoxylin distance-transform watershed.

    Parameters
    ----------
    tile
        ``(H, W, 3)`` uint8 RGB H&E tile.
    microns_per_pixel
        Pixel size used to convert every micron parameter to pixels.
    threshold
        Hematoxylin optical-density threshold; ``None`` uses Otsu on this tile (prefer one
        threshold per section, see :func:`hematoxylin_threshold`).
    sigma_um
        Gaussian smoothing of the hematoxylin channel.
    min_distance_um
        Minimal distance between two watershed seeds (splits touching nuclei).
    min_area_um2, max_area_um2
        Objects outside this area range are discarded (``None``: no upper bound).
    opening_um
        Radius of the binary opening that removes specks and thin bridges.
    peak_smoothing_um
        Gaussian smoothing of the distance transform before seeds are taken at its local
        maxima, so an elongated nucleus whose width varies slightly is not cut in pieces.

    Returns
    -------
    ``(H, W)`` int32 label image, 0 = background, nuclei numbered from 1.
    """
    import scipy.ndimage as ndi
    from skimage.segmentation import watershed

    tile = np.ascontiguousarray(tile)
    mpp = float(microns_per_pixel)
    h = hematoxylin(tile)
    if sigma_um > 0:
        h = ndi.gaussian_filter(h, sigma_um / mpp, truncate=3.0)
    if threshold is None:
        threshold = _otsu(h)
    mask = h > threshold
    r_open = int(round(opening_um / mpp))
    if r_open > 0:
        yy, xx = np.mgrid[-r_open : r_open + 1, -r_open : r_open + 1]
        mask = ndi.binary_opening(mask, structure=(yy**2 + xx**2) <= r_open**2)
    mask = ndi.binary_fill_holes(mask)
    labels = np.zeros(mask.shape, dtype=np.int32)
    if not mask.any():
        return labels
    dist = ndi.distance_transform_edt(mask).astype(np.float32)
    md = max(1, int(round(min_distance_um / mpp)))
    seeds = ndi.gaussian_filter(dist, peak_smoothing_um / mpp, truncate=3.0) if peak_smoothing_um > 0 else dist
    peaks = (seeds == ndi.maximum_filter(seeds, size=2 * md + 1)) & mask
    markers, _ = ndi.label(peaks, structure=np.ones((3, 3), bool))
    labels = watershed(-dist, markers, mask=mask).astype(np.int32, copy=False)
    area = np.bincount(labels.ravel())
    drop = area < min_area_um2 / mpp**2
    if max_area_um2 is not None:
        drop |= area > max_area_um2 / mpp**2
    drop[0] = True
    if drop[1:].any():
        keep_ids = np.cumsum(~drop).astype(np.int32)
        keep_ids[drop] = 0
        labels = keep_ids[labels]
    return labels


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    values = np.asarray(values).ravel()
    if values.size == 0 or values.min() == values.max():
        return float(values.max()) if values.size else 0.0
    return float(threshold_otsu(values))


def hematoxylin_threshold(
    image,
    *,
    microns_per_pixel: float,
    bbox: tuple[int, int, int, int] | None = None,
    sigma_um: float = 1.0,
    max_samples: int = 4_000_000,
    chunk_rows: int = 1024,
) -> float:
    """Otsu threshold of the smoothed hematoxylin channel over a region of a slide.

    The region ``bbox = (y0, x0, y1, x1)`` is read in row chunks with a stride chosen so at
    most ``max_samples`` pixels are used, which keeps memory small on whole slides.

    Returns
    -------
    The threshold (hematoxylin optical density).
    """
    import scipy.ndimage as ndi

    h_img, w_img = image.shape[:2]
    y0, x0, y1, x1 = bbox if bbox is not None else (0, 0, h_img, w_img)
    step = max(1, int(np.ceil(np.sqrt((y1 - y0) * (x1 - x0) / max_samples))))
    chunk = max(step, (chunk_rows // step) * step)
    parts = []
    for ys in range(y0, y1, chunk):
        sub = np.asarray(image[ys : min(ys + chunk, y1) : step, x0:x1:step])
        parts.append(hematoxylin(np.ascontiguousarray(sub[..., :3])))
    h = np.concatenate(parts, axis=0)
    if sigma_um > 0:
        h = ndi.gaussian_filter(h, sigma_um / microns_per_pixel / step, truncate=3.0)
    return _otsu(h)


def tile_windows(
    shape: tuple[int, int],
    tile_size: int,
    *,
    spots_xy: np.ndarray | None = None,
    radius: float = 0.0,
) -> list[tuple[int, int, int, int]]:
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


def _crop_window(core, overlap, shape):
    y0, x0, y1, x1 = core
    return (max(0, y0 - overlap), max(0, x0 - overlap), min(shape[0], y1 + overlap), min(shape[1], x1 + overlap))


def _measure_core(labels: np.ndarray, core, crop, *, return_labels: bool):
    """Measure a tile's labels, keep those whose centroid lies in the core window."""
    cy0, cx0 = crop[0], crop[1]
    table = measure(labels, offset=(cy0, cx0))
    y0, x0, y1, x1 = core
    keep = ((table["centroid_y"] >= y0) & (table["centroid_y"] < y1)
            & (table["centroid_x"] >= x0) & (table["centroid_x"] < x1)).to_numpy()
    table = table[keep].reset_index(drop=True)
    local = None
    if return_labels:
        lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
        lut[table["label"].to_numpy()] = np.arange(1, len(table) + 1, dtype=np.int32)
        local = lut[labels]
    return table, local


def _process(crop_data: np.ndarray, core, crop, method, params, return_labels: bool):
    """Segment (or take) one crop and measure the nuclei of its core; runs in a worker."""
    if isinstance(method, str):
        labels = segment_tile(crop_data, **params)
    elif callable(method):
        labels = np.asarray(method(crop_data))
        if labels.shape != crop_data.shape[:2]:
            raise ValueError(
                f"the segmentation callable returned shape {labels.shape} for a tile of shape "
                f"{crop_data.shape[:2]}; it must return an (H, W) label image of the tile."
            )
    else:
        labels = crop_data
    return _measure_core(labels, core, crop, return_labels=return_labels)


def _bounded_map(executor: Executor | None, fn: Callable, items: list, max_in_flight: int) -> Iterator:
    """Yield ``fn(*item)`` in order, keeping at most ``max_in_flight`` tasks submitted."""
    if executor is None:
        for item in items:
            yield fn(*item())
        return
    pending: deque = deque()
    it = iter(items)
    for item in it:
        pending.append(executor.submit(fn, *item()))
        if len(pending) >= max_in_flight:
            break
    while pending:
        result = pending.popleft().result()
        for item in it:
            pending.append(executor.submit(fn, *item()))
            break
        yield result


def segment_image(
    image,
    *,
    microns_per_pixel: float,
    method: str | Callable | np.ndarray = "watershed",
    windows: list[tuple[int, int, int, int]] | None = None,
    tile_size: int = 2048,
    overlap: int = 64,
    threshold: float | None = None,
    threshold_bbox: tuple[int, int, int, int] | None = None,
    n_jobs: int | None = None,
    backend: str = "threads",
    labels_out: np.ndarray | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Segment and measure the nuclei of a whole image, tile by tile.

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8 RGB array: numpy, ``np.memmap`` or dask array (read tile by tile).
    microns_per_pixel
        Pixel size of ``image``.
    method
        ``"watershed"`` (:func:`segment_tile`), a callable mapping an RGB tile to an
        ``(H, W)`` label image (e.g. a StarDist/CellViT wrapper), or a precomputed
        ``(H, W)`` integer label image of the whole slide.
    windows
        Core windows to process (default: all tiles, see :func:`tile_windows`).
    tile_size, overlap
        Tile core size and context read around it, in pixels. ``overlap`` must exceed the
        largest nucleus diameter for the exactly-once rule to measure whole nuclei.
    threshold, threshold_bbox
        Global hematoxylin threshold; ``None`` estimates it with :func:`hematoxylin_threshold`
        over ``threshold_bbox`` (default: the bounding box of ``windows``).
    n_jobs
        Workers; ``None`` uses ``sthisto.settings.n_jobs``.
    backend
        ``"threads"`` (default; the kernels release the GIL) or ``"processes"``.
    labels_out
        Optional writable ``(H, W)`` integer array (e.g. ``np.lib.format.open_memmap``) that
        receives the label image with the returned ``id`` values.
    **params
        Parameters of :func:`segment_tile` (``sigma_um``, ``min_distance_um``,
        ``min_area_um2``, ``max_area_um2``, ``opening_um``, ``peak_smoothing_um``).

    Returns
    -------
    Per-nucleus table (pixel units, full-image coordinates): ``id`` (1..n), the columns of
    :func:`sthisto.pp.nuclei.measure` and ``x``/``y`` (centroid), in tile raster order.
    """
    is_labels = isinstance(method, np.ndarray) or (
        hasattr(method, "shape") and hasattr(method, "dtype") and not callable(method))
    if is_labels:
        if method.ndim != 2 or tuple(method.shape) != tuple(image.shape[:2]):
            raise ValueError(
                f"the label image has shape {tuple(method.shape)} but the H&E image is "
                f"{tuple(image.shape[:2])}; pass labels of the full-resolution image."
            )
        source = method
    else:
        rgb_image(image, where="the H&E image")
        if np.dtype(image.dtype) != np.uint8:
            raise ValueError(f"the H&E image must be uint8 RGB, got dtype {image.dtype}")
        source = image
        if isinstance(method, str) and method != "watershed":
            raise ValueError(f"unknown method {method!r}: use 'watershed', a callable or a label image.")
    shape = tuple(int(s) for s in image.shape[:2])
    if tile_size < 16 or overlap < 0:
        raise ValueError(f"tile_size must be >= 16 and overlap >= 0, got {tile_size}, {overlap}")
    if windows is None:
        windows = tile_windows(shape, tile_size)
    if isinstance(method, str):
        unknown = set(params) - set(WATERSHED_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown segmentation parameters {sorted(unknown)}")
        params = {**WATERSHED_DEFAULTS, **params, "microns_per_pixel": float(microns_per_pixel)}
        if threshold is None and windows:
            if threshold_bbox is None:
                arr = np.asarray(windows)
                threshold_bbox = (arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
            threshold = hematoxylin_threshold(
                image, microns_per_pixel=microns_per_pixel, bbox=threshold_bbox, sigma_um=params["sigma_um"])
        params["threshold"] = threshold
    n_jobs = settings.resolve_n_jobs(n_jobs)
    if backend not in ("threads", "processes"):
        raise ValueError(f"backend must be 'threads' or 'processes', got {backend!r}")
    want_labels = labels_out is not None

    def task(core):
        crop = _crop_window(core, overlap, shape)
        y0, x0, y1, x1 = crop
        data = np.asarray(source[y0:y1, x0:x1])
        if not is_labels:
            data = np.ascontiguousarray(data[..., :3])
        return data, core, crop, (None if is_labels else method), params, want_labels

    executor: Executor | None = None
    if n_jobs > 1 and len(windows) > 1:
        executor = (ThreadPoolExecutor(n_jobs) if backend == "threads"
                    else ProcessPoolExecutor(n_jobs))
    tables, next_id = [], 1
    try:
        items = [(lambda core=core: task(core)) for core in windows]
        results = _bounded_map(executor, _process, items, max_in_flight=2 * n_jobs)
        for (table, local), core in zip(progress(results, desc="nuclei tiles", total=len(windows)),
                                        windows, strict=True):
            table.insert(0, "id", np.arange(next_id, next_id + len(table), dtype=np.int64))
            if want_labels and len(table):
                y0, x0, y1, x1 = _crop_window(core, overlap, shape)
                region = labels_out[y0:y1, x0:x1]
                hit = local > 0
                region[hit] = local[hit] + (next_id - 1)
            next_id += len(table)
            tables.append(table)
    finally:
        if executor is not None:
            executor.shutdown()
    table = pd.concat(tables, ignore_index=True) if tables else measure(np.zeros((1, 1), np.int32))
    if "id" not in table:
        table.insert(0, "id", np.zeros(0, dtype=np.int64))
    table = table.drop(columns="label")
    table["x"] = table["centroid_x"]
    table["y"] = table["centroid_y"]
    table.attrs["threshold"] = threshold
    return table


@doc_params
def segment_nuclei(
    adata: AnnData,
    *,
    library_id: str | None = None,
    method: str | Callable | np.ndarray = "watershed",
    tile_size: int = 2048,
    overlap: int = 64,
    min_area_um2: float = 10.0,
    max_area_um2: float | None = 500.0,
    sigma_um: float = 1.0,
    min_distance_um: float = 3.0,
    threshold: float | None = None,
    region: str = "spots",
    n_jobs: int | None = None,
    backend: str = "threads",
    labels_path: str | os.PathLike | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    key_added: str = K.NUCLEI,
    copy: bool = False,
) -> AnnData | None:
    """Segment the nuclei of a section's full-resolution H&E image.

    Colour deconvolution (hematoxylin), Gaussian smoothing, one Otsu threshold for the
    section, opening and hole filling, then a distance-transform watershed. Tiles of
    ``tile_size`` pixels are read with ``overlap`` pixels of context and processed in
    parallel; every nucleus is kept exactly once (by the tile core that holds its
    centroid), so memory is bounded by the tile, not the slide: a 20,000 × 20,000
    memory-mapped image runs in well under 4 GB.

    Parameters
    ----------
    {adata}
    {library_id}
    method
        ``"watershed"``; or a callable ``tile (H, W, 3) uint8 -> labels (H, W)`` to plug in a
        deep segmenter (StarDist, CellViT…); or a precomputed ``(H, W)`` label image of the
        full-resolution image (e.g. exported from HoVer-Net), which is measured as is.
    tile_size, overlap
        Tile core size and the context read around it, in full-resolution pixels.
    min_area_um2, max_area_um2
        Nuclei outside this area range (µm²) are discarded (watershed method only).
    sigma_um
        Gaussian smoothing of the hematoxylin channel, in µm.
    min_distance_um
        Minimal distance between the centres of two touching nuclei, in µm.
    threshold
        Hematoxylin optical-density threshold; ``None`` = Otsu over the processed region.
    region
        ``"spots"`` processes only tiles within 1.5 spot diameters of a spot centre;
        ``"all"`` processes the whole image.
    {n_jobs}
    backend
        ``"threads"`` or ``"processes"`` for ``n_jobs > 1``.
    labels_path
        Optional ``.npy`` path: the label image (int32, ``id`` values) is written there as
        a memory-mapped file, tile by tile.
    {spatial_key}
    key_added
        Key in ``adata.uns``.
    {copy}

    Returns
    -------
    {returns_copy} Sets ``adata.uns[key_added]`` with ``"nuclei"`` — per-nucleus table:
    ``id``, centroid ``x``/``y`` (full-resolution pixels), ``area`` (pixels), the shape
    measures of :func:`sthisto.pp.nuclei.measure` and ``spot`` (obs name of the spot whose
    disk holds the centroid, ``""`` if none) — and ``"params"``.

    Notes
    -----
    A cohort on a dask cluster: each section is independent, so submit one task per section
    (threads inside a task stay at ``n_jobs=1``)::

        from dask.distributed import Client
        client = Client(n_workers=8, threads_per_worker=1)

        def run(path):
            adata = sthisto.read.legacy_st(*path)
            sthisto.pp.segment_nuclei(adata, n_jobs=1)
            sthisto.pp.nuclei_features(adata)
            return adata

        sections = client.gather(client.map(run, paths))

    A single slide stored as a dask array (e.g. ``dask.array.from_zarr``) can be attached as
    ``images['fullres']`` and is read one tile at a time; the tile function
    :func:`sthisto.pp.nuclei.segment_image` also runs per window inside ``dask.delayed``.
    """
    adata = copy_or_self(adata, copy)
    lib = _library_id(adata, library_id)
    image, scale = image_and_scale(adata, lib, img_key=K.FULLRES)
    rgb_image(image, where=f"uns['spatial'][{lib!r}]['images']['fullres']")
    mpp = microns_per_pixel(adata, lib)
    xy = spatial_coords(adata, spatial_key)
    shape = tuple(int(s) for s in image.shape[:2])
    radius = spot_diameter_px(adata, lib) / 2
    inside = ((xy[:, 0] + radius > 0) & (xy[:, 0] - radius < shape[1])
              & (xy[:, 1] + radius > 0) & (xy[:, 1] - radius < shape[0]))
    if not inside.any():
        raise ValueError(
            f"no spot of obsm[{spatial_key!r}] overlaps the {shape[1]}x{shape[0]} image: the spot "
            "coordinates must be full-resolution pixels of this image (check the scale factors)."
        )
    if not inside.all():
        logger.warning("%d of %d spots lie outside the image", int((~inside).sum()), len(xy))
    if region == "spots":
        windows = tile_windows(shape, tile_size, spots_xy=xy[inside], radius=3 * radius)
        y0 = max(0, int(np.floor(xy[inside, 1].min() - 3 * radius)))
        x0 = max(0, int(np.floor(xy[inside, 0].min() - 3 * radius)))
        y1 = min(shape[0], int(np.ceil(xy[inside, 1].max() + 3 * radius)))
        x1 = min(shape[1], int(np.ceil(xy[inside, 0].max() + 3 * radius)))
        bbox = (y0, x0, y1, x1)
    elif region == "all":
        windows, bbox = tile_windows(shape, tile_size), None
    else:
        raise ValueError(f"region must be 'spots' or 'all', got {region!r}")
    labels_out = None
    if labels_path is not None:
        labels_path = os.fspath(labels_path)
        if not labels_path.endswith(".npy"):
            raise ValueError(f"labels_path must end with .npy, got {labels_path!r}")
        labels_out = np.lib.format.open_memmap(labels_path, mode="w+", dtype=np.int32, shape=shape)
    params = {"sigma_um": sigma_um, "min_distance_um": min_distance_um,
              "min_area_um2": min_area_um2, "max_area_um2": max_area_um2}
    if not isinstance(method, str):
        changed = [k for k, v in params.items() if v != WATERSHED_DEFAULTS[k]]
        if threshold is not None:
            changed.append("threshold")
        if changed:
            logger.warning("segment_nuclei: %s apply to the built-in watershed only and are ignored "
                           "for a user-supplied segmenter or label image", ", ".join(changed))
    table = segment_image(
        image, microns_per_pixel=mpp, method=method, windows=windows, tile_size=tile_size,
        overlap=overlap, threshold=threshold, threshold_bbox=bbox, n_jobs=n_jobs,
        backend=backend, labels_out=labels_out, **(params if isinstance(method, str) else {}),
    )
    if labels_out is not None:
        labels_out.flush()
    table["spot"] = assign_spots(table[["x", "y"]].to_numpy(), xy, radius, adata.obs_names)
    logger.info("segmented %d nuclei in %d tiles", len(table), len(windows))
    method_name = method if isinstance(method, str) else (
        f"callable:{getattr(method, '__name__', type(method).__name__)}" if callable(method) else "labels")
    stored = {"method": method_name, "tile_size": tile_size, "overlap": overlap, "region": region,
              "microns_per_pixel": mpp, "library_id": lib, "n_tiles": len(windows),
              "spot_radius_px": radius, **{k: v for k, v in params.items() if v is not None}}
    if labels_path is not None:
        stored["labels_path"] = labels_path
    if table.attrs.get("threshold") is not None:
        stored["threshold"] = float(table.attrs["threshold"])
    table.attrs = {}
    save_data(adata, attr="uns", key=key_added, data={"nuclei": table, "params": stored})
    return adata if copy else None


def assign_spots(centroids: np.ndarray, spots_xy: np.ndarray, radius: float, names) -> np.ndarray:
    """Name of the spot whose disk (``radius`` pixels) holds each centroid, ``""`` if none.

    Returns
    -------
    Object array of spot names, one per centroid.
    """
    from scipy.spatial import cKDTree

    out = np.full(len(centroids), "", dtype=object)
    if len(centroids) == 0 or len(spots_xy) == 0:
        return out
    dist, idx = cKDTree(spots_xy).query(centroids, k=1)
    hit = dist <= radius
    out[hit] = np.asarray(names, dtype=object)[idx[hit]]
    return out
