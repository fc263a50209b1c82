"""Checks of user input that fail early with messages that say what to do."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from anndata import AnnData

from . import _constants as K


def library_id(adata: AnnData, library_id: str | None = None) -> str:
    """Resolve the library id in ``uns['spatial']`` (the only one, when ``None``)."""
    spatial = adata.uns.get(K.SPATIAL_UNS)
    if not isinstance(spatial, Mapping) or len(spatial) == 0:
        raise KeyError(
            "adata.uns['spatial'] is missing: read the section with sthisto.read.legacy_st or "
            "sthisto.read.visium (or scanpy.read_visium) so the image and scale factors are attached."
        )
    if library_id is None:
        if len(spatial) > 1:
            raise ValueError(
                f"adata.uns['spatial'] holds several libraries {list(spatial)}; pass library_id=."
            )
        return next(iter(spatial))
    if library_id not in spatial:
        raise KeyError(f"library_id {library_id!r} not in adata.uns['spatial'] ({list(spatial)})")
    return library_id


def spatial_coords(adata: AnnData, spatial_key: str = K.SPATIAL_KEY) -> np.ndarray:
    """Return ``obsm[spatial_key]`` as a finite float64 (n_obs, 2) array of (x, y) pixels."""
    if spatial_key not in adata.obsm:
        raise KeyError(
            f"adata.obsm[{spatial_key!r}] (spot centres in full-resolution pixels) is missing; "
            "read the section with sthisto.read.legacy_st or sthisto.read.visium."
        )
    xy = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise ValueError(f"adata.obsm[{spatial_key!r}] must be (n_obs, 2), got {xy.shape}")
    if not np.isfinite(xy[:, :2]).all():
        raise ValueError(f"adata.obsm[{spatial_key!r}] contains NaN or infinite coordinates")
    return xy[:, :2]


def require_key(mapping: Mapping, key: str, where: str, producer: str) -> None:
    """Raise a KeyError naming ``producer`` when ``mapping[key]`` is missing."""
    if key not in mapping:
        raise KeyError(f"adata.{where}[{key!r}] is missing: run `{producer}` first.")


def unique_var_names(adata: AnnData) -> None:
    """Raise when ``var_names`` are not unique (gene-level steps need unique symbols)."""
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"adata.var_names are not unique (e.g. {dup}); call adata.var_names_make_unique()."
        )


def counts_matrix(x, *, where: str = "adata.X") -> None:
    """Raise when a count matrix has NaN, infinite or negative values."""
    import scipy.sparse as sp

    values = x.data if sp.issparse(x) else np.asarray(x)
    if values.size == 0:
        return
    if not np.isfinite(values).all():
        raise ValueError(f"{where} contains NaN or infinite values; counts must be finite.")
    if (values < 0).any():
        raise ValueError(f"{where} contains negative values; raw counts must be >= 0.")


def rgb_image(img, *, where: str = "image", batch: bool = False) -> None:
    """Raise unless ``img`` is a non-empty ``(H, W, 3)`` uint8 RGB array.

    The one check of an H&E image used by every image step. With ``batch=True`` the array
    is a stack of patches ``(B, H, W, 3)``. Only ``shape`` and ``dtype`` are read, so a
    memory-mapped or dask image is not loaded.
    """
    import numpy as np  # imported when an array is checked

    shape = tuple(getattr(img, "shape", ()))
    lead = 1 if batch else 0
    layout = "(B, H, W, 3)" if batch else "(H, W, 3)"
    if len(shape) == 2 + lead:
        raise ValueError(f"{where} is grayscale {shape}; an RGB H&E image {layout} is required.")
    if len(shape) != 3 + lead or shape[-1] != 3:
        hint = " (drop the alpha channel: img[..., :3])" if len(shape) == 3 + lead and shape[-1] == 4 else ""
        raise ValueError(f"{where} must be {layout} RGB, got shape {shape}{hint}.")
    if shape[lead] == 0 or shape[lead + 1] == 0:
        raise ValueError(f"{where} is empty (shape {shape}).")
    dtype = np.dtype(getattr(img, "dtype", np.float64))
    if dtype != np.uint8:
        raise ValueError(f"{where} must be 8-bit (uint8) RGB, got dtype {dtype}; convert it, e.g. "
                         "skimage.util.img_as_ubyte(img).")
