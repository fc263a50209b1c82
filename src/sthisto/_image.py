"""Access to a section's H&E image and scale factors in ``uns['spatial']``.

The full-resolution image is either an array in ``images['fullres']`` (numpy, memmap or
dask) or a path in ``metadata['fullres_path']`` opened lazily, so AnnData objects stay
small and h5ad files do not duplicate whole slides.

A section may also carry a *pyramid*: coarser versions of the full-resolution image in
``images['fullres_1']``, ``images['fullres_2']``… with ``scalefactors['tissue_fullres_1_scalef']``…
(image pixels per full-resolution pixel, as Visium's ``tissue_hires_scalef``), e.g. the
levels of a SpatialData multiscale image as dask arrays. :func:`coarser_levels` lists the
levels and :func:`level_for` picks the coarsest one that still resolves what a step needs, so
tiles are read from a small level instead of the full slide.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from anndata import AnnData

from . import _constants as K
from ._errors import DEPENDENCY_ERRORS, FileFormatError, error_detail, file_format_error, reading
from ._logging import logger
from ._validate import existing_file, number
from ._validate import library_id as _library_id

VISIUM_SPOT_PITCH_UM = 100.0  # centre-to-centre distance of neighbouring Visium spots
# Space Ranger's ``spot_diameter_fullres`` spans a theoretical 65 µm spot (the physical spot is
# 55 µm): 10x documents microns per pixel = 65 / spot_diameter_fullres, and the 100 µm spot
# pitch of real Space Ranger positions gives the same pixel size.
VISIUM_FULLRES_DIAMETER_UM = 65.0
_NUMERIC_SCALEFACTORS = (K.SCALEF_HIRES, "tissue_lowres_scalef", K.SPOT_DIAMETER, "fiducial_diameter_fullres",
                         K.MICRONS_PER_PIXEL)


def spatial_entry(adata: AnnData, library_id: str | None = None) -> dict[str, Any]:
    """Return ``uns['spatial'][library_id]``."""
    lib = _library_id(adata, library_id)  # first: it explains a missing uns['spatial']
    return adata.uns[K.SPATIAL_UNS][lib]


def scalefactors(adata: AnnData, library_id: str | None = None) -> dict[str, float]:
    """Return the scale factors of a library, checking that they are positive numbers."""
    lib = _library_id(adata, library_id)
    sf = dict(adata.uns[K.SPATIAL_UNS][lib].get("scalefactors", {}))
    for key, value in sf.items():
        if key in _NUMERIC_SCALEFACTORS or isinstance(value, int | float | np.number):
            sf[key] = number(value, f"adata.uns['spatial'][{lib!r}]['scalefactors'][{key!r}]", positive=True)
    return sf


def microns_per_pixel(adata: AnnData, library_id: str | None = None) -> float:
    """Microns per full-resolution pixel.

    Taken from ``scalefactors['microns_per_pixel']`` (written by sthisto readers); otherwise
    derived from ``spot_diameter_fullres`` as 10x documents it for Space Ranger output
    (``65 / spot_diameter_fullres``), with a warning.
    """
    sf = scalefactors(adata, library_id)
    if K.MICRONS_PER_PIXEL in sf:
        return float(sf[K.MICRONS_PER_PIXEL])
    if K.SPOT_DIAMETER in sf:
        mpp = VISIUM_FULLRES_DIAMETER_UM / float(sf[K.SPOT_DIAMETER])
        logger.warning(
            "scalefactors lack 'microns_per_pixel'; assuming Space Ranger scale factors (spot_diameter_fullres "
            "spans 65 µm) gives %.3f µm/px. "
            "Set adata.uns['spatial'][lib]['scalefactors']['microns_per_pixel'] if this is wrong.",
            mpp,
        )
        return mpp
    raise KeyError(
        "cannot tell the pixel size: scalefactors have neither 'microns_per_pixel' nor "
        "'spot_diameter_fullres'. Add one of them to adata.uns['spatial'][library_id]['scalefactors']."
    )


def spot_diameter_px(adata: AnnData, library_id: str | None = None) -> float:
    """Spot diameter in full-resolution pixels."""
    sf = scalefactors(adata, library_id)
    if K.SPOT_DIAMETER not in sf:
        raise KeyError("scalefactors lack 'spot_diameter_fullres' (spot diameter in full-res pixels).")
    return float(sf[K.SPOT_DIAMETER])


_IMAGE_FORMAT = "an 8-bit RGB image (JPEG, PNG, TIFF) or an (H, W, 3) uint8 .npy array"
_SAMPLE = 1 << 16  # bytes per sampled block of the fingerprint


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into an (H, W, 3) uint8 array (``.npy`` files are memory-mapped).

    RGBA/palette images are converted to RGB (alpha dropped, logged); grayscale raises.
    A file that cannot be decoded raises a ``ValueError`` naming it.
    """
    path = existing_file(path, "image file")
    suffix = path.suffix.lower()
    with reading(path, "image file", expected=_IMAGE_FORMAT):
        if suffix == ".npy":
            img = np.load(path, mmap_mode="r")
        elif suffix in (".tif", ".tiff"):
            import tifffile

            try:
                img = tifffile.memmap(path, mode="r")
            except (ValueError, OSError):  # compressed or tiled: not memory-mappable
                img = tifffile.imread(path)
        else:
            from PIL import Image

            Image.MAX_IMAGE_PIXELS = None  # whole slides are legitimately large
            with Image.open(path) as im:
                if im.mode in ("L", "I", "I;16", "F", "1"):
                    raise file_format_error(path, "image file", f"is a grayscale image (mode {im.mode})",
                                            expected="an RGB H&E image")
                if im.mode != "RGB":
                    logger.info("converting %s from %s to RGB", path.name, im.mode)
                    im = im.convert("RGB")
                img = np.asarray(im)
    if img.ndim == 3 and img.shape[2] == 4:
        logger.warning("dropping the alpha channel of %s", path.name)
        img = img[..., :3]
    if img.ndim != 3 or img.shape[2] != 3:
        raise file_format_error(path, "image file", f"holds an array of shape {img.shape}", expected=_IMAGE_FORMAT)
    if img.dtype != np.uint8:
        raise file_format_error(path, "image file", f"holds dtype {img.dtype}", expected=_IMAGE_FORMAT)
    return img


def file_fingerprint(path: str | os.PathLike) -> dict[str, int]:
    """Size and a CRC-32 of three 64 KiB blocks (start, middle, end) of a file: cheap to recompute.

    Recorded by the readers for a lazily referenced full-resolution image and checked by
    :func:`fullres_image` before the image is read again. Not the modification time: a
    copied file keeps its content but not its mtime.
    """
    size = Path(path).stat().st_size
    crc = 0
    with open(path, "rb") as fh:
        for offset in sorted({0, max(0, size // 2 - _SAMPLE // 2), max(0, size - _SAMPLE)}):
            fh.seek(offset)
            crc = zlib.crc32(fh.read(_SAMPLE), crc)
    return {"size": int(size), "sampled_crc32": int(crc)}


def _lazy_fullres(entry: dict, library_id: str) -> np.ndarray:
    """Read the image at ``metadata['fullres_path']``, checking it is the one the reader saw."""
    meta = entry["metadata"]
    where = f"adata.uns['spatial'][{library_id!r}]['metadata']"
    path = Path(meta[K.FULLRES_PATH])
    if not path.is_file():
        raise FileNotFoundError(
            f"the full-resolution image {path} referenced by {where}['{K.FULLRES_PATH}'] is missing. To fix: "
            f"restore it, or set {where}['{K.FULLRES_PATH}'] to where it is now."
        )
    recorded = meta.get(K.FULLRES_FINGERPRINT)
    if recorded is not None:
        now = file_fingerprint(path)
        if int(recorded["size"]) != now["size"] or int(recorded["sampled_crc32"]) != now["sampled_crc32"]:
            raise file_format_error(
                path, "full-resolution image",
                f"changed on disk since the section was read ({int(recorded['size'])} bytes then, "
                f"{now['size']} now{'' if int(recorded['size']) != now['size'] else ', other content'})",
                fix="read the section again; if only the encoding changed and the pixels are the same, "
                    f"delete {where}['{K.FULLRES_FINGERPRINT}']",
            )
    img = read_image(path)
    if recorded is not None and "shape" in recorded and tuple(img.shape) != tuple(int(v) for v in recorded["shape"]):
        raise file_format_error(path, "full-resolution image",
                                f"has shape {img.shape}, but {tuple(recorded['shape'])} when the section was read",
                                fix="read the section again")
    return img


def lazy_tiff(path: str | os.PathLike, *, chunk_px: int = 2048) -> list:
    """Open a (pyramidal) TIFF as dask arrays that read only the tiles or strips asked for.

    Uses tifffile's zarr interface, so a slice reads the TIFF tiles/strips it covers, never
    the whole slide (``dask_image.imread`` reads one whole page per chunk). Pyramidal TIFFs
    (OME-TIFF, BigTIFF ``.btf`` with sub-resolutions) give one array per level.

    Returns
    -------
    List of (H, W, C) dask arrays, finest first.
    """
    import dask.array as da
    import tifffile
    import zarr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    root = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    arrays = [root] if hasattr(root, "shape") else [root[k] for k in sorted(root.array_keys(), key=int)]
    levels = []
    for arr in arrays:
        level = da.from_zarr(arr)
        if level.ndim == 3 and level.shape[0] in (3, 4) and level.shape[2] not in (3, 4):
            level = level.transpose(1, 2, 0)  # planar (C, H, W) pages
        levels.append(level.rechunk((chunk_px, chunk_px, level.shape[2])) if level.ndim == 3 else level)
    return levels


def fullres_image(adata: AnnData, library_id: str | None = None):
    """Return the full-resolution image (array-like, (H, W, 3) uint8) or ``None``.

    A lazily referenced image (``metadata['fullres_path']``) is checked against the size,
    sampled checksum and shape recorded when the section was read.
    """
    lib = _library_id(adata, library_id)
    entry = adata.uns[K.SPATIAL_UNS][lib]
    images = entry.get("images", {})
    if K.FULLRES in images:
        return images[K.FULLRES]
    if entry.get("metadata", {}).get(K.FULLRES_PATH):
        return _lazy_fullres(entry, lib)
    return None


def image_source(adata: AnnData, library_id: str | None = None, img_key: str = K.FULLRES) -> str:
    """Where an image of a section comes from, for messages: its SpatialData store, file or ``uns`` entry."""
    lib = _library_id(adata, library_id)
    meta = adata.uns[K.SPATIAL_UNS][lib].get("metadata", {})
    if meta.get("spatialdata_path") and meta.get("image_key"):
        return f"image {meta['image_key']!r} of the SpatialData store {meta['spatialdata_path']}"
    if img_key == K.FULLRES and meta.get(K.FULLRES_PATH):
        return f"image file {meta[K.FULLRES_PATH]}"
    return f"adata.uns['spatial'][{lib!r}]['images'][{img_key!r}]"


def read_region(img, index, *, source: str = "the image") -> np.ndarray:
    """Return ``np.asarray(img[index])``; an error while reading it names ``source``.

    A lazy image (dask over zarr or a TIFF) reads its chunks here: a damaged chunk raises a
    codec's bare ``RuntimeError`` / ``ValueError`` deep inside dask, which becomes a
    :class:`~sthisto._errors.FileFormatError` that says which image and what to do.
    """
    try:
        return np.asarray(img[index])
    except MemoryError:
        raise
    except (*DEPENDENCY_ERRORS, RuntimeError) as err:
        raise FileFormatError(f"cannot read the pixels of {source}: {error_detail(err)}. To fix: the stored image is "
                              "damaged or incomplete; write or copy it again (e.g. sdata.write) and re-read the "
                              "section.") from err


def coarser_levels(adata: AnnData, library_id: str | None = None) -> list[tuple[object, float]]:
    """Pyramid levels below full resolution: ``images['fullres_{i}']`` for ``i = 1, 2, ...``.

    Level ``i`` has ``scale = scalefactors['tissue_fullres_{i}_scalef']`` (image pixels per
    full-resolution pixel, < 1); levels are read in order until one is missing and must get
    coarser.

    Returns
    -------
    ``[(image, scale), ...]``, finest first (empty without a pyramid).
    """
    entry = spatial_entry(adata, library_id)
    images, sf = entry.get("images", {}), scalefactors(adata, library_id)
    levels: list[tuple[object, float]] = []
    previous, level = 1.0, 1
    while (key := K.fullres_level_key(level)) in images:
        if K.scalef_key(key) not in sf:
            raise KeyError(f"images[{key!r}] has no scalefactors[{K.scalef_key(key)!r}] "
                           "(image pixels per full-resolution pixel).")
        scale = float(sf[K.scalef_key(key)])
        if not scale < previous:
            raise ValueError(f"pyramid level {key!r} has scale {scale}, not below the previous "
                             f"level's {previous}; levels must get coarser.")
        levels.append((images[key], scale))
        previous, level = scale, level + 1
    return levels


def level_for(levels: list[tuple[object, float]], min_scale: float) -> tuple[object, float]:
    """Pick the coarsest pyramid level whose scale is at least ``min_scale``.

    ``min_scale`` is the fewest image pixels per full-resolution pixel a step can work with
    (e.g. ``patch_px / patch side in full-res pixels``): coarser levels would lose detail,
    finer ones read more pixels than needed. Level 0 is the fallback.

    Returns
    -------
    ``(image, scale)`` of the chosen level.
    """
    chosen = levels[0]
    for img, scale in levels[1:]:
        if scale >= min_scale * (1 - 1e-9):
            chosen = (img, scale)
    return chosen


def image_and_scale(adata: AnnData, library_id: str | None = None, *, img_key: str | None = None):
    """Return ``(image, scale)`` where ``scale`` maps full-res pixel coordinates to the image.

    ``img_key=None`` prefers the full-resolution image and falls back to ``hires`` with a
    warning (features from a downsampled image are weaker).
    """
    entry = spatial_entry(adata, library_id)
    if img_key in (None, K.FULLRES):
        img = fullres_image(adata, library_id)
        if img is not None:
            return img, 1.0
        if img_key == K.FULLRES:
            raise KeyError(
                "no full-resolution image: put it in uns['spatial'][lib]['images']['fullres'] or "
                "pass fullres_image= to sthisto.read.visium."
            )
        logger.warning("no full-resolution image attached; using the 'hires' image instead.")
        img_key = K.HIRES
    images = entry.get("images", {})
    if img_key not in images:
        raise KeyError(f"image {img_key!r} not in uns['spatial'][lib]['images'] ({list(images)})")
    scale_key = K.scalef_key(img_key)
    sf = scalefactors(adata, library_id)
    if scale_key not in sf:
        raise KeyError(f"scalefactors lack {scale_key!r} needed to use the {img_key!r} image.")
    return images[img_key], float(sf[scale_key])


def downsample(img, *, max_dim: int = 2000) -> tuple[np.ndarray, float]:
    """Downsample an RGB image so its longer side is at most ``max_dim`` pixels.

    Returns ``(image, scalef)`` with ``scalef = new / old`` as in Visium's
    ``tissue_hires_scalef``. Uses area averaging (PIL ``BOX``), reading the source once.
    """
    from PIL import Image

    h, w = img.shape[:2]
    scalef = min(1.0, max_dim / max(h, w))
    if scalef == 1.0:
        return np.array(img, dtype=np.uint8), 1.0
    size = (max(1, round(w * scalef)), max(1, round(h * scalef)))
    small = Image.fromarray(np.asarray(img, dtype=np.uint8)).resize(size, Image.Resampling.BOX)
    return np.asarray(small), scalef
