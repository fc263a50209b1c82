"""``sthisto.pp.segment_nuclei``: nuclei of a section's full-resolution H&E image into ``uns``."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._image import image_and_scale, image_source, microns_per_pixel, spot_diameter_px
from sthisto._logging import logger
from sthisto._settings import settings
from sthisto._utils import Outputs, copy_or_self
from sthisto._validate import (
    has_spots,
    key_name,
    one_of,
    rgb_image,
    spatial_coords,
    unique_obs_names,
)
from sthisto._validate import library_id as _library_id
from sthisto.pp._parallel import check_client

from ._pooling import assign_spots
from ._tiling import resolve_segmenter, segment_image, tile_arguments, tile_windows


@doc_params
def segment_nuclei(
    adata: AnnData,
    *,
    library_id: str | None = None,
    method: Any = "watershed",
    tile_size: int = 2048,
    overlap: int = 64,
    threshold: float | None = None,
    region: str = "spots",
    n_jobs: int | None = None,
    backend: str = "threads",
    client: Any = None,
    labels_path: str | os.PathLike | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    key_added: str = K.NUCLEI,
    copy: bool = False,
    **watershed_params: float | None,
) -> AnnData | None:
    """Segment the nuclei of a section's full-resolution H&E image.

    The default segmenter (:class:`sthisto.pp.nuclei.Watershed`): colour deconvolution
    (hematoxylin), Gaussian smoothing, one Otsu threshold for the section, opening and hole
    filling, then a distance-transform watershed. Tiles of ``tile_size`` pixels are read
    with ``overlap`` pixels of context and processed in parallel; every nucleus is kept
    exactly once (by the tile core that holds its centroid), so memory is bounded by the
    tile, not the slide: a 20,000 × 20,000 memory-mapped image runs in well under 4 GB.

    Parameters
    ----------
    {adata}
    {library_id}
    method
        ``"watershed"``; a :class:`sthisto.pp.nuclei.Segmenter` (e.g.
        ``Watershed(WatershedParams(min_area_um2=20))``); a callable ``tile (H, W, 3) uint8
        -> labels (H, W)`` to plug in a deep segmenter (StarDist, CellViT…); or a
        precomputed ``(H, W)`` label image of the full-resolution image (e.g. exported from
        HoVer-Net), which is measured as is.
    tile_size, overlap
        Tile core size and the context read around it, in full-resolution pixels.
    threshold
        Hematoxylin optical-density threshold of the watershed; ``None`` = Otsu over the
        processed region.
    region
        ``"spots"`` processes only tiles within 1.5 spot diameters of a spot centre;
        ``"all"`` processes the whole image.
    {n_jobs}
    backend
        ``"threads"`` or ``"processes"`` for ``n_jobs > 1``.
    {client}
    labels_path
        Optional ``.npy`` path: the label image (int32, ``id`` values) is written there as
        a memory-mapped file, tile by tile.
    {spatial_key}
    key_added
        Key in ``adata.uns``.
    {copy}
    **watershed_params
        Fields of :class:`sthisto.pp.nuclei.WatershedParams` (``sigma_um``,
        ``min_distance_um``, ``min_area_um2``, ``max_area_um2``, ``opening_um``,
        ``peak_smoothing_um``; all in µm) overriding its defaults. They apply to the
        watershed only and are reported as ignored for another segmenter.

    Returns
    -------
    {returns_copy} Sets ``adata.uns[key_added]`` with ``"nuclei"`` — per-nucleus table:
    ``id``, centroid ``x``/``y`` (full-resolution pixels), ``area`` (pixels), the shape
    measures of :func:`sthisto.pp.nuclei.measure` and ``spot`` (obs name of the spot whose
    disk holds the centroid, ``""`` if none) — and ``"params"``: ``method``, the tiling,
    ``microns_per_pixel``, ``library_id``, ``n_tiles``, ``spot_radius_px``, and for the
    watershed every :class:`~sthisto.pp.nuclei.WatershedParams` field and the ``threshold``.

    Notes
    -----
    On a dask cluster (``pip install 'sthisto[dask]'``), each worker segments one tile at a
    time and reads it itself from a memory-mapped or lazy (zarr/dask) full-resolution
    image; the nuclei table equals the local run's::

        from dask.distributed import Client, LocalCluster
        client = Client(LocalCluster(n_workers=8, threads_per_worker=1))
        sthisto.pp.segment_nuclei(adata, client=client)

    A cohort of sections: :func:`sthisto.pp.run_cohort` sends whole sections to workers.
    """
    adata = copy_or_self(adata, copy)
    key_added = key_name(key_added)
    has_spots(adata)
    unique_obs_names(adata)  # nuclei are assigned to spots by name
    tile_size, overlap = tile_arguments(tile_size, overlap)
    region = one_of(region, "region", ("spots", "all"))
    backend = one_of(backend, "backend", ("threads", "processes"))
    settings.resolve_n_jobs(n_jobs)  # checked here, resolved by segment_image
    check_client(client)  # a bad client is named before any work
    segmenter = resolve_segmenter(method, watershed_params, threshold)
    lib = _library_id(adata, library_id)
    image, _ = image_and_scale(adata, lib, img_key=K.FULLRES)
    rgb_image(image, where=f"uns['spatial'][{lib!r}]['images']['fullres']")
    mpp = microns_per_pixel(adata, lib)
    xy = spatial_coords(adata, spatial_key)
    shape = tuple(int(s) for s in image.shape[:2])
    radius = spot_diameter_px(adata, lib) / 2
    target = None if labels_path is None else _labels_target(labels_path, shape)
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
    else:
        windows, bbox = tile_windows(shape, tile_size), None
    # the label image is written to a temporary file next to labels_path, moved there on success
    partial = None if target is None else target.with_name(f".{target.name}.partial.npy")
    try:
        labels_out = None if partial is None else np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.int32, shape=shape)
        table = segment_image(
            image, microns_per_pixel=mpp, method=segmenter, windows=windows, tile_size=tile_size,
            overlap=overlap, threshold_bbox=bbox, n_jobs=n_jobs, backend=backend, client=client,
            labels_out=labels_out, source=image_source(adata, lib),
        )
        if labels_out is not None:
            labels_out.flush()
            del labels_out
            os.replace(partial, target)
    finally:
        if partial is not None and partial.exists():
            partial.unlink()
    table["spot"] = assign_spots(table[["x", "y"]].to_numpy(), xy, radius, adata.obs_names)
    logger.info("segmented %d nuclei in %d tiles", len(table), len(windows))
    stored = {"tile_size": tile_size, "overlap": overlap, "region": region,
              "microns_per_pixel": mpp, "library_id": lib, "n_tiles": len(windows),
              "spot_radius_px": radius, **table.attrs}
    if target is not None:
        stored["labels_path"] = str(target)
    table.attrs = {}
    out = Outputs()
    out.add("uns", key_added, {"nuclei": table, "params": stored})
    out.write(adata)
    return adata if copy else None


def _labels_target(labels_path: str | os.PathLike, shape: tuple[int, int]) -> Path:
    """Check that ``labels_path`` is a writable ``.npy`` path with room for the label image."""
    if not isinstance(labels_path, str | os.PathLike):
        raise TypeError(f"labels_path must be a path (str or os.PathLike), got {type(labels_path).__name__}.")
    target = Path(labels_path).expanduser()
    if target.suffix != ".npy":
        raise ValueError(f"labels_path must end with .npy, got {os.fspath(labels_path)!r}")
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"labels_path {target} is a folder; give a .npy file path.")
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"the folder of labels_path does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, f"cannot write labels_path {target}: the folder is not writable.")
    need = 4 * shape[0] * shape[1]
    free = shutil.disk_usage(folder).free
    if need > free:
        raise OSError(errno.ENOSPC, f"labels_path {target}: the label image needs {need / 2**30:.3g} GiB, the "
                                    f"disk has {free / 2**30:.3g} GiB free.")
    return target
