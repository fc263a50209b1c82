"""The classical nuclei segmenter: hematoxylin, Otsu, opening, distance-transform watershed."""

from __future__ import annotations

import numpy as np

from ._params import WatershedParams
from ._stain import hematoxylin, otsu


def segment_tile(
    tile: np.ndarray,
    *,
    microns_per_pixel: float,
    threshold: float | None = None,
    params: WatershedParams | None = None,
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
    params
        Watershed parameters; ``None`` uses the defaults of :class:`WatershedParams`.

    Returns
    -------
    ``(H, W)`` int32 label image, 0 = background, nuclei numbered from 1.
    """
    import scipy.ndimage as ndi
    from skimage.segmentation import watershed

    p = WatershedParams() if params is None else params
    tile = np.ascontiguousarray(tile)
    mpp = float(microns_per_pixel)
    h = hematoxylin(tile)
    if p.sigma_um > 0:
        h = ndi.gaussian_filter(h, p.sigma_um / mpp, truncate=3.0)
    if threshold is None:
        threshold = otsu(h)
    mask = h > threshold
    r_open = int(round(p.opening_um / mpp))
    if r_open > 0:
        yy, xx = np.mgrid[-r_open : r_open + 1, -r_open : r_open + 1]
        mask = ndi.binary_opening(mask, structure=(yy**2 + xx**2) <= r_open**2)
    mask = ndi.binary_fill_holes(mask)
    labels = np.zeros(mask.shape, dtype=np.int32)
    if not mask.any():
        return labels
    dist = ndi.distance_transform_edt(mask).astype(np.float32)
    md = max(1, int(round(p.min_distance_um / mpp)))
    seeds = ndi.gaussian_filter(dist, p.peak_smoothing_um / mpp, truncate=3.0) if p.peak_smoothing_um > 0 else dist
    peaks = (seeds == ndi.maximum_filter(seeds, size=2 * md + 1)) & mask
    markers, _ = ndi.label(peaks, structure=np.ones((3, 3), bool))
    labels = watershed(-dist, markers, mask=mask).astype(np.int32, copy=False)
    area = np.bincount(labels.ravel())
    drop = (area < p.min_area_um2 / mpp**2) | (area > p.max_area_um2 / mpp**2)
    drop[0] = True
    if drop[1:].any():
        keep_ids = np.cumsum(~drop).astype(np.int32)
        keep_ids[drop] = 0
        labels = keep_ids[labels]
    return labels
