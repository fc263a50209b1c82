"""What :func:`sthisto.pp.segment_nuclei` stored, read back and checked by the steps that use it.

The nuclei table and its parameters in ``uns[nuclei_key]`` and, when it wrote one, the
label image at ``params['labels_path']``: :func:`sthisto.pp.nuclei_features`, the bin
steps, :func:`sthisto.io.to_spatialdata` and :func:`sthisto.pl.nuclei_outlines` read them
through these functions, so a missing, edited or damaged entry gets one clear error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto._errors import InputError, file_format_error, reading
from sthisto._validate import existing_file, number, require_key

PRODUCER = "sthisto.pp.segment_nuclei"
_LABELS_FORMAT = "the (H, W) integer .npy label image written by sthisto.pp.segment_nuclei(labels_path=)"


def stored_nuclei(
    adata: AnnData, nuclei_key: str, *, columns: Sequence[str] = ("x", "y", "area"), allow_empty: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return ``(table, params)`` of ``adata.uns[nuclei_key]``, checked.

    Raises a ``KeyError`` naming :func:`sthisto.pp.segment_nuclei` when the entry or its
    table is missing, and an :class:`~sthisto._errors.InputError` when the table lacks
    ``columns``, has non-finite centroids, or (unless ``allow_empty``) holds no nucleus.
    """
    where = f"adata.uns[{nuclei_key!r}]"
    require_key(adata.uns, nuclei_key, "uns", PRODUCER)
    entry = adata.uns[nuclei_key]
    if not isinstance(entry, Mapping) or not isinstance(entry.get("nuclei"), pd.DataFrame):
        raise KeyError(f"{where} has no 'nuclei' table: run `{PRODUCER}` first.")
    table, params = entry["nuclei"], entry.get("params", {})
    if not isinstance(params, Mapping):
        raise InputError(f"{where}['params'] must be a dict (as {PRODUCER} writes it), got {type(params).__name__}.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{where}['nuclei'] lacks the columns {missing}: re-run `{PRODUCER}` (or measure the "
                         "nuclei with sthisto.pp.nuclei.measure).")
    for column in {"x", "y"} & set(columns):
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"{where}['nuclei'][{column!r}] holds {int((~np.isfinite(values)).sum())} NaN, "
                             "infinite or non-numeric centroid(s); nuclei need finite positions. To fix: "
                             f"drop those rows or re-run `{PRODUCER}`.")
    if "id" in columns and not table["id"].is_unique:
        raise InputError(f"{where}['nuclei']['id'] holds duplicated nucleus ids (e.g. "
                         f"{table['id'][table['id'].duplicated()].iloc[0]!r}); each nucleus needs its own id. "
                         f"To fix: re-run `{PRODUCER}`.")
    if not len(table) and not allow_empty:
        raise InputError(f"{where}['nuclei'] holds no nucleus: the segmentation found none. To fix: check the "
                         f"image and `{PRODUCER}`'s threshold= / min_area_um2=.")
    return table, dict(params)


def nuclei_to_pool(adata: AnnData, nuclei_key: str, library_id: str | None) -> tuple[pd.DataFrame, dict, str, float]:
    """``(table, params, library_id, microns_per_pixel)`` of the nuclei a pooling step averages per spot.

    Checks what such a step needs first: spots with unique names, a stored table with
    centroids, areas and orientations, the library and the pixel size.
    """
    from sthisto._validate import has_spots, unique_obs_names
    from sthisto._validate import library_id as resolve_library

    has_spots(adata)
    unique_obs_names(adata)  # the pooled features are DataFrames indexed by obs_names
    table, params = stored_nuclei(adata, nuclei_key, columns=("x", "y", "area", "orientation"))
    lib = resolve_library(adata, library_id if library_id is not None else params.get("library_id"))
    return table, params, lib, nuclei_pixel_size(adata, nuclei_key, params, lib)


def nuclei_pixel_size(adata: AnnData, nuclei_key: str, params: Mapping[str, Any], library_id: str) -> float:
    """Microns per pixel the nuclei were measured at (``params``), else the section's."""
    if params.get("microns_per_pixel") is not None:
        return number(params["microns_per_pixel"], f"adata.uns[{nuclei_key!r}]['params']['microns_per_pixel']",
                      positive=True)
    from sthisto._image import microns_per_pixel

    return microns_per_pixel(adata, library_id)


def read_label_image(path: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Open the label image at ``path`` (memory-mapped), checked against the image ``shape``.

    Raises ``FileNotFoundError`` for a missing file and a
    :class:`~sthisto._errors.FileFormatError` for a damaged, foreign or mis-sized one.
    """
    path = existing_file(path, "label image (uns[...]['params']['labels_path'])")
    with reading(path, "label image", expected=_LABELS_FORMAT, fix=f"re-run {PRODUCER}(labels_path=...)"):
        labels = np.load(path, mmap_mode="r", allow_pickle=False)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise file_format_error(path, "label image", f"holds a {labels.dtype} array of shape {labels.shape}",
                                expected=_LABELS_FORMAT, fix=f"re-run {PRODUCER}(labels_path=...)")
    if shape is not None and tuple(labels.shape) != tuple(shape[:2]):
        raise file_format_error(path, "label image", f"is {labels.shape[1]}×{labels.shape[0]} px but the image is "
                                f"{shape[1]}×{shape[0]}", expected="the label image of this section's image",
                                fix=f"re-run {PRODUCER}(labels_path=...) on this section")
    return labels
