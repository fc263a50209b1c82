"""Pieces shared by the readers: count validation, image attachment, coordinate checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sthisto import _constants as K
from sthisto._image import downsample, read_image
from sthisto._logging import logger


def require_file(path, what: str) -> Path:
    """Return ``path`` as a Path, raising FileNotFoundError naming ``what`` if absent."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def integer_counts(values, *, where: str) -> sp.csr_matrix:
    """Validate raw counts (finite, non-negative, integer) and return them as float32 CSR.

    Sparse input is checked on its stored values only, never densified.
    """
    matrix = sp.csr_matrix(values if sp.issparse(values) else np.asarray(values), dtype=np.float32)
    stored = np.asarray(values.tocsr().data if sp.issparse(values) else values, dtype=np.float64)
    if not np.isfinite(stored).all():
        raise ValueError(f"{where}: counts contain NaN or infinite values.")
    if (stored < 0).any():
        raise ValueError(f"{where}: counts contain negative values; raw counts must be >= 0.")
    if not np.array_equal(stored, np.round(stored)):
        raise ValueError(f"{where}: counts are not integers; pass raw UMI/read counts.")
    return matrix


def check_inside(xy: np.ndarray, shape: tuple[int, ...], *, where: str, ids) -> None:
    """Raise when spot centres ``xy`` (x, y) fall outside an image of ``shape`` (H, W, ...)."""
    h, w = shape[:2]
    outside = (xy[:, 0] < 0) | (xy[:, 1] < 0) | (xy[:, 0] >= w) | (xy[:, 1] >= h)
    if outside.any():
        examples = ", ".join(f"{i} at ({x:.0f}, {y:.0f})" for i, (x, y) in
                             zip(np.asarray(ids)[outside][:3], xy[outside][:3], strict=True))
        raise ValueError(
            f"{where}: {int(outside.sum())} spot(s) lie outside the {w}×{h} px image (e.g. {examples}). "
            "Check that the image is the full-resolution one the coordinates refer to."
        )


def image_entry(
    image, *, scalefactors: dict, load_fullres: bool, metadata: dict | None = None
) -> tuple[dict, tuple[int, int, int]]:
    """Build ``uns['spatial'][lib]`` for a full-resolution image file.

    The hires image (longer side ≤ 2000 px) is always stored; the full-resolution one is
    stored as an array when ``load_fullres`` else referenced by path in ``metadata``.
    """
    path = require_file(image, "image file")
    img = read_image(path)
    hires, scalef = downsample(img, max_dim=2000)
    images = {K.HIRES: hires}
    if load_fullres:
        images[K.FULLRES] = np.asarray(img)
    meta = {K.FULLRES_PATH: str(path.resolve()), **(metadata or {})}
    entry = {
        "images": images,
        "scalefactors": {**scalefactors, K.SCALEF_HIRES: scalef},
        "metadata": meta,
    }
    logger.info("attached image %s (%d×%d px, hires scale %.4f)", path.name, img.shape[1], img.shape[0], scalef)
    return entry, img.shape
