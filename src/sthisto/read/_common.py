"""Pieces shared by the readers: tables, counts, coordinate checks and image attachment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sthisto import _constants as K
from sthisto._errors import InputError, file_format_error, reading
from sthisto._image import downsample, file_fingerprint, read_image
from sthisto._logging import logger
from sthisto._validate import counts_matrix, existing_file


def read_table(path: Path, what: str, *, expected: str, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` with any parse error re-raised naming ``path``, ``what`` and ``expected``."""
    with reading(path, what, expected=expected):
        return pd.read_csv(path, **kwargs)


def row_label(table: pd.DataFrame, position: int, *, header_lines: int = 1) -> str:
    """``"spot 'AAAC-1'"`` for a labelled row, ``"line 7"`` (of the file) for a numbered one."""
    if isinstance(table.index, pd.RangeIndex):
        return f"line {position + 1 + header_lines}"
    return f"spot {table.index[position]!r}"


def numeric_columns(table: pd.DataFrame, columns, *, path: Path, what: str, integer: bool = False,
                    header_lines: int = 1) -> None:
    """Raise unless ``columns`` of ``table`` are finite numbers (whole numbers with ``integer``)."""
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(values)
        if integer:
            bad |= values != np.round(values)
        if bad.any():
            first = int(np.argmax(bad))
            kind = "whole numbers" if integer else "finite numbers"
            value = table[column].iloc[first]
            shown = repr(value) if isinstance(value, str) else str(value)
            raise file_format_error(
                path, what,
                f"column {column!r} holds {int(bad.sum())} value(s) that are not {kind} (e.g. "
                f"{shown} at {row_label(table, first, header_lines=header_lines)})",
                fix="correct or remove those rows",
            )


def check_library_id(library_id) -> None:
    """Raise unless ``library_id`` is ``None`` or a non-empty string."""
    if library_id is not None and (not isinstance(library_id, str) or not library_id.strip()):
        raise InputError(f"library_id must be a non-empty string or None, got {library_id!r}.")


def counts_csr(values, *, where: str, labels=None) -> sp.csr_matrix:
    """Validate raw counts (numeric, finite, non-negative, integer, not all zero) as float32 CSR.

    The check runs on the original values (sparse input on its stored values only, never
    densified), then the matrix is converted. ``labels`` = (spot ids, gene names).
    """
    counts_matrix(values, where=where, integer=True, nonzero=True, labels=labels)
    return sp.csr_matrix(values if sp.issparse(values) else np.asarray(values), dtype=np.float32)


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
    stored as an array when ``load_fullres`` else referenced by path in ``metadata``, with
    its fingerprint (size, sampled checksum, shape) so a later read can tell if it changed.
    """
    path = existing_file(image, "image file")
    img = read_image(path)
    hires, scalef = downsample(img, max_dim=2000)
    images = {K.HIRES: hires}
    if load_fullres:
        images[K.FULLRES] = np.asarray(img)
    fingerprint = {**file_fingerprint(path), "shape": [int(n) for n in img.shape]}
    meta = {K.FULLRES_PATH: str(path.resolve()), K.FULLRES_FINGERPRINT: fingerprint, **(metadata or {})}
    entry = {
        "images": images,
        "scalefactors": {**scalefactors, K.SCALEF_HIRES: scalef},
        "metadata": meta,
    }
    logger.info("attached image %s (%d×%d px, hires scale %.4f)", path.name, img.shape[1], img.shape[0], scalef)
    return entry, img.shape
