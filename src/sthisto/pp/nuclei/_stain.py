"""Stain separation: the hematoxylin channel and its section-wide Otsu threshold."""

from __future__ import annotations

import numba
import numpy as np

from sthisto._image import read_region
from sthisto._validate import rgb_image

# skimage.color.hed_from_rgb[:, 0]: the hematoxylin column of the Ruifrok-Johnston matrix
_HED_FROM_RGB_H = np.array([1.87798274, -0.06590806, -0.60190736])


def _hematoxylin_lut() -> np.ndarray:
    """(3, 256) table: contribution of each channel value to skimage's ``rgb2hed(...)[..., 0]``."""
    v = np.maximum(np.arange(256, dtype=np.float64) / 255.0, 1e-6)
    od = np.log(v) / np.log(1e-6)
    return od[None, :] * _HED_FROM_RGB_H[:, None]


_H_LUT = _hematoxylin_lut()


@numba.njit(cache=True, nogil=True)
def _hematoxylin_kernel(rgb, lut, out):
    h, w = out.shape
    for i in range(h):
        for j in range(w):
            v = lut[0, rgb[i, j, 0]] + lut[1, rgb[i, j, 1]] + lut[2, rgb[i, j, 2]]
            out[i, j] = v if v > 0.0 else 0.0


def hematoxylin(rgb: np.ndarray) -> np.ndarray:
    """Hematoxylin optical density of an RGB uint8 image.

    Equal to ``skimage.color.rgb2hed(rgb)[..., 0]`` (up to float32 rounding), computed with a
    lookup table in one pass instead of a float64 log of every pixel.

    Returns
    -------
    ``(H, W)`` float32 optical density (0 where the stain is absent).
    """
    rgb = np.ascontiguousarray(rgb)
    rgb_image(rgb, where="the RGB image given to hematoxylin()")
    out = np.empty(rgb.shape[:2], dtype=np.float32)
    _hematoxylin_kernel(rgb, _H_LUT, out)
    return out


def otsu(values: np.ndarray) -> float:
    """Otsu threshold of ``values`` (their value when constant, 0 when empty)."""
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
    sigma_um: float | None = None,
    max_samples: int = 4_000_000,
    chunk_rows: int = 1024,
) -> float:
    """Otsu threshold of the smoothed hematoxylin channel over a region of a slide.

    The region ``bbox = (y0, x0, y1, x1)`` is read in row chunks with a stride chosen so at
    most ``max_samples`` pixels are used, which keeps memory small on whole slides.
    ``sigma_um=None`` smooths as the watershed does (:class:`WatershedParams`).

    Returns
    -------
    The threshold (hematoxylin optical density).
    """
    import scipy.ndimage as ndi

    from ._params import WatershedParams

    if sigma_um is None:
        sigma_um = WatershedParams().sigma_um
    h_img, w_img = image.shape[:2]
    y0, x0, y1, x1 = bbox if bbox is not None else (0, 0, h_img, w_img)
    step = max(1, int(np.ceil(np.sqrt((y1 - y0) * (x1 - x0) / max_samples))))
    chunk = max(step, (chunk_rows // step) * step)
    parts = []
    for ys in range(y0, y1, chunk):
        sub = read_region(image, np.s_[ys : min(ys + chunk, y1) : step, x0:x1:step], source="the H&E image")
        parts.append(hematoxylin(np.ascontiguousarray(sub[..., :3])))
    h = np.concatenate(parts, axis=0)
    if sigma_um > 0:
        h = ndi.gaussian_filter(h, sigma_um / microns_per_pixel / step, truncate=3.0)
    return otsu(h)
