"""Spot patches: the one definition of patch geometry, read lazily tile by tile.

Pixel convention: pixel ``i`` of an image covers ``[i - 0.5, i + 0.5)``, so a spot at
``obsm['spatial'] = (x, y)`` is centred on the pixel whose column is ``x`` and row is ``y``
(numpy/scikit-image indexing; Visium's ``pxl_col_in_fullres``/``pxl_row_in_fullres``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._errors import InputError
from sthisto._image import (
    coarser_levels,
    image_and_scale,
    image_source,
    level_for,
    microns_per_pixel,
    read_region,
    spot_diameter_px,
)
from sthisto._logging import logger
from sthisto._validate import affordable, integer, number, rgb_image, spatial_coords


@dataclass(frozen=True)
class PatchBatch:
    """A batch of spot patches.

    Attributes
    ----------
    index
        Integer positions of the spots in ``adata.obs`` (int64, (B,)).
    images
        RGB patches, uint8 (B, P, P, 3).
    border
        ``True`` where part of the patch fell outside the image and was reflect-padded.
    """

    index: np.ndarray
    images: np.ndarray
    border: np.ndarray


@dataclass(frozen=True)
class PatchGeometry:
    """Where the patches are: image, centres and side length in that image's pixels."""

    image: object
    centres: np.ndarray  # (n, 2) x, y in image pixels
    size: float  # side length in image pixels
    scale: float  # image pixels per full-resolution pixel
    size_um: float  # side length in microns
    microns_per_pixel: float  # of the full-resolution image
    levels: tuple = ()  # (image, scale) of the full-resolution pyramid, when the image is its level 0
    source: str = "the section image"  # where the image comes from, named when it cannot be read

    def at_resolution(self, patch_px: int | None) -> PatchGeometry:
        """Move the patches to the coarsest pyramid level still giving ``patch_px`` pixels a side.

        Pixel ``j`` of a level with scale ``s`` covers full-resolution pixels
        ``[j / s, (j + 1) / s)``, so pixel-centre coordinates map as ``(c + 0.5)·s − 0.5``.

        Returns
        -------
        A :class:`PatchGeometry` on the chosen level (``self`` when level 0 is needed).
        """
        if patch_px is None or len(self.levels) < 2:
            return self
        img, scale = level_for(list(self.levels), float(patch_px) / self.size)
        if img is self.image:
            return self
        logger.info("reading patches from the pyramid level at scale %.4g (%d px patches of %.1f px)",
                    scale, patch_px, self.size * scale)
        centres = (self.centres + 0.5) * scale - 0.5
        return PatchGeometry(img, centres, self.size * scale, self.scale * scale, self.size_um,
                             self.microns_per_pixel, source=self.source)


def patch_geometry(
    adata: AnnData,
    *,
    patch_um: float | None = None,
    library_id: str | None = None,
    img_key: str | None = None,
    spatial_key: str = K.SPATIAL_KEY,
) -> PatchGeometry:
    """Resolve the image, the spot centres and the patch side length for ``adata``.

    The side length is ``patch_um`` microns, or the spot diameter when ``None``; with a
    ``hires``-only section, centres and size are scaled by ``tissue_hires_scalef``.

    Returns
    -------
    A :class:`PatchGeometry`.
    """
    img, scale = image_and_scale(adata, library_id, img_key=img_key)
    rgb_image(img, where="the section image")
    xy = spatial_coords(adata, spatial_key)
    mpp = microns_per_pixel(adata, library_id)
    if patch_um is None:
        size_full = spot_diameter_px(adata, library_id)
        size_um = size_full * mpp
    else:
        size_um = number(patch_um, "patch_um", positive=True, fix="give the patch side in microns, or None for "
                         "the spot diameter")
        size_full = size_um / mpp
    centres = xy * scale
    h, w = img.shape[:2]
    if size_full * scale > max(h, w):
        raise InputError(f"patch_um={size_um:g} µm spans {size_full * scale:.0f} px, more than the whole "
                         f"{w}×{h} px image; give a patch side of the order of a spot ({mpp * spot_diameter_px(adata, library_id):.3g} µm).")
    outside = (centres[:, 0] < -0.5) | (centres[:, 0] > w - 0.5) | (centres[:, 1] < -0.5) | (
        centres[:, 1] > h - 0.5
    )
    if outside.any():
        first = adata.obs_names[np.flatnonzero(outside)[:3]].tolist()
        raise ValueError(
            f"{int(outside.sum())} spot centres lie outside the {w}×{h} image (e.g. {first}); "
            f"check obsm[{spatial_key!r}] is in full-resolution pixels (x, y) and the scale factors."
        )
    full = scale == 1.0 and img_key in (None, K.FULLRES)
    levels = ((img, 1.0), *coarser_levels(adata, library_id)) if full else ()
    source = image_source(adata, library_id, K.FULLRES if full else (img_key or K.HIRES))
    return PatchGeometry(img, centres, size_full * scale, scale, size_um, mpp, levels, source)


def _read_window(img, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, bool]:
    """Read ``img[y0:y1, x0:x1]`` with reflect padding where it leaves the image."""
    h, w = img.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    win = np.asarray(img[cy0:cy1, cx0:cx1])
    pads = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1), (0, 0))
    if any(p for pair in pads[:2] for p in pair):
        mode = "reflect" if min(win.shape[:2]) > 1 else "edge"
        return np.pad(win, pads, mode=mode), True
    return win, False


def extract_patch(img, cx: float, cy: float, size: float, patch_px: int | None) -> tuple[np.ndarray, bool]:
    """Cut one square patch of side ``size`` centred on pixel ``(cx, cy)``.

    With ``patch_px`` the exact (sub-pixel) square is resampled to ``patch_px`` pixels
    (PIL bilinear with antialiasing); with ``None`` an integer window of ``round(size)``
    pixels is returned unresampled (centred within half a pixel).

    Returns
    -------
    ``(patch, border)``: uint8 patch and whether reflect padding was used.
    """
    half = size / 2.0
    if patch_px is None:
        n = max(1, int(round(size)))
        x0 = int(np.floor(cx - (n - 1) / 2.0 + 0.5))
        y0 = int(np.floor(cy - (n - 1) / 2.0 + 0.5))
        return _read_window(img, x0, y0, x0 + n, y0 + n)
    from PIL import Image

    # pixel-centre coordinates -> PIL box coordinates (pixel i spans [i, i+1))
    bx0, by0 = cx + 0.5 - half, cy + 0.5 - half
    x0, y0 = int(np.floor(bx0)) - 1, int(np.floor(by0)) - 1
    x1, y1 = int(np.ceil(bx0 + size)) + 1, int(np.ceil(by0 + size)) + 1
    win, _ = _read_window(img, x0, y0, x1, y1)
    h, w = img.shape[:2]
    border = bool(bx0 < 0 or by0 < 0 or bx0 + size > w or by0 + size > h)
    box = (bx0 - x0, by0 - y0, bx0 - x0 + size, by0 - y0 + size)
    out = Image.fromarray(np.ascontiguousarray(win)).resize(
        (patch_px, patch_px), Image.Resampling.BILINEAR, box=box
    )
    return np.asarray(out), border


@dataclass(frozen=True)
class PatchTile:
    """The spots whose patches are cut from one tile of the image.

    Attributes
    ----------
    window
        ``(y0, x0, y1, x1)`` image pixels read (the tile plus a margin of half a patch).
    index
        Integer positions of the spots in ``adata.obs``, in the order they are visited.
    """

    window: tuple[int, int, int, int]
    index: np.ndarray


def patch_tiles(geometry: PatchGeometry, *, tile_px: int = 4096) -> list[PatchTile]:
    """Group the spots of ``geometry`` by image tile of ``tile_px`` pixels, tiles in raster order.

    Each tile's window has a margin of half a patch (plus 3 px), so padding inside a tile
    happens only at the image edges and a patch is cut from its tile alone.

    Returns
    -------
    List of :class:`PatchTile`, covering every spot once.
    """
    centres, size = geometry.centres, geometry.size
    h, w = geometry.image.shape[:2]
    tile_px = max(int(tile_px), 1)
    tx, ty = (centres[:, 0] // tile_px).astype(int), (centres[:, 1] // tile_px).astype(int)
    order = np.lexsort((np.arange(len(centres)), tx, ty))
    margin = int(np.ceil(size / 2.0)) + 3
    tiles = []
    if not len(order):
        return tiles
    cuts = np.flatnonzero((np.diff(ty[order]) != 0) | (np.diff(tx[order]) != 0)) + 1
    for group in np.split(order, cuts):
        gx, gy = tx[group[0]], ty[group[0]]
        x0, y0 = max(gx * tile_px - margin, 0), max(gy * tile_px - margin, 0)
        x1, y1 = min((gx + 1) * tile_px + margin, w), min((gy + 1) * tile_px + margin, h)
        tiles.append(PatchTile((int(y0), int(x0), int(y1), int(x1)), group.astype(np.int64)))
    return tiles


def tile_patches(pixels: np.ndarray, window: tuple[int, int, int, int], centres: np.ndarray, size: float,
                 patch_px: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Cut the patches centred on ``centres`` (image pixels, x, y) from the ``pixels`` of ``window``.

    Returns
    -------
    ``(images, border)``: uint8 ``(k, P, P, 3)`` patches and their border flags.
    """
    y0, x0 = window[0], window[1]
    cut = [extract_patch(pixels, cx - x0, cy - y0, size, patch_px) for cx, cy in centres]
    return np.stack([c[0] for c in cut]), np.array([c[1] for c in cut], dtype=bool)


def iter_patches(
    geometry: PatchGeometry,
    *,
    patch_px: int | None = 224,
    batch_size: int = 64,
    tile_px: int = 4096,
) -> Iterator[PatchBatch]:
    """Yield :class:`PatchBatch` es for a resolved geometry, reading one tile at a time.

    Spots are visited tile by tile (:func:`patch_tiles`: ``tile_px`` image pixels square,
    plus a margin of half a patch), so a memory-mapped, dask or zarr image is read once per
    tile and never whole. With a pyramid (``geometry.levels``) and resampled patches, tiles
    are read from the coarsest level that still has ``patch_px`` pixels across a patch
    (:meth:`PatchGeometry.at_resolution`).
    """
    geometry = geometry.at_resolution(patch_px)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if patch_px is not None and int(patch_px) < 1:
        raise ValueError(f"patch_px must be a positive integer or None, got {patch_px}")
    buf_i: list[np.ndarray] = []
    buf_p: list[np.ndarray] = []
    buf_b: list[np.ndarray] = []
    held = 0
    for tile in patch_tiles(geometry, tile_px=tile_px):
        y0, x0, y1, x1 = tile.window
        pixels = read_region(geometry.image, np.s_[y0:y1, x0:x1], source=geometry.source)
        pos = 0
        while pos < len(tile.index):  # a batch may span tiles
            index = tile.index[pos:pos + batch_size - held]
            pos += len(index)
            images, border = tile_patches(pixels, tile.window, geometry.centres[index], geometry.size, patch_px)
            buf_i.append(index)
            buf_p.append(images)
            buf_b.append(border)
            held += len(index)
            if held == batch_size:
                yield PatchBatch(np.concatenate(buf_i), np.concatenate(buf_p), np.concatenate(buf_b))
                buf_i, buf_p, buf_b, held = [], [], [], 0
    if buf_i:
        yield PatchBatch(np.concatenate(buf_i), np.concatenate(buf_p), np.concatenate(buf_b))


@doc_params
def patches(
    adata: AnnData,
    *,
    patch_um: float | None = None,
    patch_px: int | None = 224,
    batch_size: int = 64,
    library_id: str | None = None,
    img_key: str | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    tile_px: int = 4096,
) -> Iterator[PatchBatch]:
    """Iterate over square image patches centred on the spots, in batches.

    The geometry used by every image step of sthisto: a patch is centred on
    ``obsm[spatial_key]`` (sub-pixel exact), spans ``patch_um`` microns (the spot diameter
    by default) and is resampled to ``patch_px`` pixels. Patches that cross the image
    border are reflect-padded and flagged, never dropped. The image is read lazily, one
    tile at a time, from numpy, memory-mapped, dask or zarr arrays.

    Parameters
    ----------
    {adata}
    patch_um
        Side length of a patch in microns; ``None`` uses the spot diameter.
    patch_px
        Side length of the returned patches in pixels; ``None`` keeps the image's own
        resolution (an integer window, no resampling).
    batch_size
        Number of patches per batch.
    {library_id}
    img_key
        ``"fullres"`` or ``"hires"``; ``None`` prefers full resolution and falls back to
        ``hires`` (coordinates and size are scaled by ``tissue_hires_scalef``).
    {spatial_key}
    tile_px
        Side of the image tiles read at once, in image pixels (bounds memory).

    Returns
    -------
    An iterator of :class:`~sthisto.pp._patches.PatchBatch` (``index``, ``images`` uint8
    (B, P, P, 3), ``border``), spots grouped by image tile; ``index`` gives each patch's
    position in ``adata.obs``. Nothing is written to ``adata``.
    """
    batch_size = integer(batch_size, "batch_size", minimum=1)
    patch_px = None if patch_px is None else integer(patch_px, "patch_px", minimum=1, fix="or None to keep the "
                                                     "image's own resolution")
    tile_px = integer(tile_px, "tile_px", minimum=1)
    geometry = patch_geometry(
        adata, patch_um=patch_um, library_id=library_id, img_key=img_key, spatial_key=spatial_key
    )
    side = patch_px if patch_px is not None else int(np.ceil(geometry.size))
    affordable(batch_size * side**2 * 3, f"a batch of {batch_size} patches of {side}×{side} px",
               fix="lower batch_size or patch_px")
    return iter_patches(geometry, patch_px=patch_px, batch_size=batch_size, tile_px=tile_px)
