"""``sthisto.pl.nuclei_outlines``: segmented nucleus outlines over the H&E image around one spot."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from sthisto import _constants as K
from sthisto._errors import InputError
from sthisto._image import image_and_scale, image_source, read_region, spot_diameter_px
from sthisto._logging import logger
from sthisto._validate import anndata, number, spatial_coords
from sthisto.pp.nuclei._stored import read_label_image, stored_nuclei

from ._axes import one_axis


def nuclei_region(
    adata: AnnData,
    spot=None,
    *,
    nuclei_key: str = K.NUCLEI,
    spatial_key: str = K.SPATIAL_KEY,
    margin: float = 0.25,
) -> dict:
    """Collect the data behind :func:`nuclei_outlines`: H&E crop around a spot, labels, centroids.

    Labels come from ``params['labels_path']`` when :func:`sthisto.pp.segment_nuclei` wrote
    one; otherwise the watershed is re-run on the crop with the stored
    :class:`~sthisto.pp.nuclei.WatershedParams` and section threshold, which reproduces the
    segmentation of interior nuclei.

    Returns
    -------
    dict with ``image`` (crop, uint8), ``labels`` (crop, int, or ``None``), ``window``
    (``y0, x0, y1, x1`` full-res pixels), ``centroids`` (x, y within the crop, nuclei of the
    table whose centroid is in the crop), ``spot_xy`` (in the crop), ``radius`` and ``spot``.
    """
    anndata(adata)
    margin = number(margin, "margin", minimum=0, fix="give the context around the spot as a fraction of its radius")
    table, params = stored_nuclei(adata, nuclei_key, allow_empty=True)
    lib = params.get("library_id")
    xy = spatial_coords(adata, spatial_key)
    if spot is None:  # the spot with the most nuclei
        counts = table["spot"].value_counts() if "spot" in table else None
        counts = counts[counts.index != ""] if counts is not None else None
        spot = counts.index[0] if counts is not None and len(counts) else adata.obs_names[0]
    if isinstance(spot, bool | np.bool_) or not isinstance(spot, str | int | np.integer):
        raise TypeError(f"spot must be an obs name or an integer position, got {type(spot).__name__}.")
    if isinstance(spot, int | np.integer):
        if not 0 <= spot < adata.n_obs:
            raise InputError(f"spot index {spot} is out of range for {adata.n_obs} spots (0 to {adata.n_obs - 1}).")
        pos = int(spot)
    else:
        if spot not in adata.obs_names:
            raise KeyError(f"spot {spot!r} is not in adata.obs_names")
        pos = int(adata.obs_names.get_loc(spot))
    image, scale = image_and_scale(adata, lib, img_key=K.FULLRES)
    radius = spot_diameter_px(adata, lib) / 2
    half = radius * (1 + margin)
    cx, cy = xy[pos]
    h, w = image.shape[:2]
    y0, x0 = max(0, int(np.floor(cy - half))), max(0, int(np.floor(cx - half)))
    y1, x1 = min(h, int(np.ceil(cy + half))), min(w, int(np.ceil(cx + half)))
    if y1 <= y0 or x1 <= x0:
        raise ValueError(f"spot {adata.obs_names[pos]!r} lies outside the image")
    source = image_source(adata, lib)
    crop = read_region(image, np.s_[y0:y1, x0:x1], source=source)[..., :3]
    labels = None
    if params.get("labels_path"):
        labels = np.asarray(read_label_image(params["labels_path"], image.shape)[y0:y1, x0:x1])
    elif params.get("method") == "watershed":
        from sthisto.pp.nuclei import WatershedParams, crop_window, segment_tile

        wy0, wx0, wy1, wx1 = crop_window((y0, x0, y1, x1), int(params["overlap"]), (h, w))
        big = segment_tile(
            read_region(image, np.s_[wy0:wy1, wx0:wx1], source=source)[..., :3],
            microns_per_pixel=params["microns_per_pixel"], threshold=params.get("threshold"),
            params=WatershedParams.from_params(params),
        )
        labels = big[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0]
    else:
        logger.warning("no label image stored (method %r without labels_path); drawing centroids only.",
                       params.get("method"))
    tx, ty = table["x"].to_numpy(), table["y"].to_numpy()
    inside = (tx >= x0) & (tx < x1) & (ty >= y0) & (ty < y1)
    return {
        "image": crop,
        "labels": labels,
        "window": (y0, x0, y1, x1),
        "centroids": np.column_stack([tx[inside] - x0, ty[inside] - y0]),
        "spot_xy": (cx - x0, cy - y0),
        "radius": radius,
        "spot": str(adata.obs_names[pos]),
    }


def nuclei_outlines(
    adata: AnnData,
    spot=None,
    *,
    ax=None,
    nuclei_key: str = K.NUCLEI,
    spatial_key: str = K.SPATIAL_KEY,
    margin: float = 0.25,
    color: str = "lime",
    show_centroids: bool = True,
):
    """Plot segmented nucleus outlines over the H&E image around one spot.

    Parameters
    ----------
    adata
        Section segmented with :func:`sthisto.pp.segment_nuclei`.
    spot
        Obs name or integer position of the spot; ``None`` picks the spot with most nuclei.
    ax
        Matplotlib axes to draw into; a new figure when ``None``.
    nuclei_key
        Key in ``adata.uns`` of the nuclei table.
    spatial_key
        Key in ``adata.obsm`` of the spot centres.
    margin
        Context shown around the spot disk, as a fraction of its radius.
    color
        Colour of the outlines (and of the centroid marks).
    show_centroids
        Mark the centroids of the nuclei in the table.

    Returns
    -------
    The matplotlib ``Axes`` (its ``.figure`` is the Figure); nothing is shown.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Circle

    ax = one_axis(ax, "the H&E crop")
    data = nuclei_region(adata, spot, nuclei_key=nuclei_key, spatial_key=spatial_key, margin=margin)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(data["image"])
    if data["labels"] is not None:
        from skimage.segmentation import find_boundaries

        edges = find_boundaries(data["labels"], mode="inner")
        overlay = np.zeros((*edges.shape, 4))
        overlay[edges] = to_rgba(color)
        ax.imshow(overlay, interpolation="nearest")
    if show_centroids and len(data["centroids"]):
        ax.scatter(data["centroids"][:, 0], data["centroids"][:, 1], s=4, c=color, linewidths=0)
    ax.add_patch(Circle(data["spot_xy"], data["radius"], fill=False, ec="white", lw=1.2, ls="--"))
    ax.set_title(f"{data['spot']}: {len(data['centroids'])} nuclei")
    ax.set_axis_off()
    return ax
