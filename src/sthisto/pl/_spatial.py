"""Observed vs predicted expression over the H&E image, side by side, one colour scale per gene.

Needs only matplotlib (imported inside the functions); squidpy/scanpy plotting is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from anndata import AnnData

from sthisto import _constants as K
from sthisto._expression import gene_indices, targets
from sthisto._image import scalefactors, spatial_entry
from sthisto._validate import name_list, number, spatial_coords
from sthisto.tl._evaluate import _predictions
from sthisto.tl._metrics import pearson_columns

from ._axes import axes_arg


def _spatial_pred_data(
    adata: AnnData,
    genes: Sequence[str],
    *,
    pred_key: str = K.PRED,
    layer: str | None = None,
    library_id: str | None = None,
    img_key: str | None = K.HIRES,
    spatial_key: str = K.SPATIAL_KEY,
) -> dict[str, Any]:
    """Arrays drawn by :func:`spatial_pred`: image, spot centres/diameter in image pixels, values.

    Returns a dict with ``image`` (or ``None``), ``xy`` (n_obs, 2) in image pixels,
    ``diameter`` (image pixels), ``extent`` (x0, x1, y1, y0) and ``genes``: a list of dicts
    with ``gene``, ``observed``, ``predicted``, ``vmin``, ``vmax`` (shared by both panels)
    and ``pcc``.
    """
    genes = list(name_list(genes, "genes"))
    if not genes:
        raise ValueError("genes is empty: name at least one gene to plot.")
    pred = _predictions(adata, pred_key)
    idx = gene_indices(adata, genes)
    observed = targets(adata, genes, layer)
    predicted = pred[:, idx]
    missing = [g for g, col in zip(genes, predicted.T, strict=True) if np.isnan(col).all()]
    if missing:
        raise ValueError(f"no prediction for {missing} in adata.layers[{pred_key!r}]; the model did not predict them "
                         "(run sthisto.tl.predict with a model fitted on these genes: sthisto.tl.fit(genes=...)).")
    xy_full = spatial_coords(adata, spatial_key)
    image, scale = None, 1.0
    sf: dict = {}
    if K.SPATIAL_UNS in adata.uns:
        sf = scalefactors(adata, library_id)
        if img_key is not None:
            images = spatial_entry(adata, library_id).get("images", {})
            if img_key not in images:
                raise KeyError(f"image {img_key!r} not in uns['spatial'][lib]['images'] ({list(images)}); pass img_key=None to plot without it.")
            image = np.asarray(images[img_key])
            scale = float(sf.get(f"tissue_{img_key}_scalef", 1.0))
    xy = xy_full * scale
    if K.SPOT_DIAMETER in sf:
        diameter = float(sf[K.SPOT_DIAMETER]) * scale
    else:  # half the nearest-neighbour spacing
        from scipy.spatial import cKDTree

        d, _ = cKDTree(xy).query(xy, k=2) if len(xy) > 1 else (np.ones((1, 2)), None)
        diameter = float(np.median(d[:, 1]))
    pad = diameter
    extent = (xy[:, 0].min() - pad, xy[:, 0].max() + pad, xy[:, 1].max() + pad, xy[:, 1].min() - pad)
    pcc = pearson_columns(observed, np.nan_to_num(predicted))
    per_gene = []
    for j, g in enumerate(genes):
        both = np.concatenate([observed[:, j], predicted[:, j]])
        both = both[np.isfinite(both)]
        per_gene.append({
            "gene": g, "observed": observed[:, j], "predicted": predicted[:, j],
            "vmin": float(both.min()), "vmax": float(both.max()), "pcc": float(pcc[j]),
        })
    return {"image": image, "xy": xy, "diameter": diameter, "extent": extent, "genes": per_gene}


def spatial_pred(
    adata: AnnData,
    genes: str | Sequence[str],
    *,
    pred_key: str = K.PRED,
    layer: str | None = None,
    library_id: str | None = None,
    img_key: str | None = K.HIRES,
    spatial_key: str = K.SPATIAL_KEY,
    cmap: str = "viridis",
    spot_alpha: float = 0.9,
    ax=None,
    figsize: tuple[float, float] | None = None,
):
    """Plot observed and predicted expression of each gene side by side over the H&E image.

    Observed values are the model's target (``normalize_total(1e4)`` + ``log1p`` of the
    counts); both panels of a gene share one colour scale; the predicted panel's title
    gives the per-gene PCC.

    Parameters
    ----------
    adata
        Section with predictions in ``layers[pred_key]`` (:func:`sthisto.tl.predict`).
    genes
        One gene or a list; each gets a row of two panels.
    pred_key
        Layer holding the predictions.
    layer
        Layer holding observed raw counts; ``None`` uses ``X``.
    library_id
        Key in ``uns['spatial']``; ``None`` when there is only one.
    img_key
        Image to draw under the spots (``"hires"``, ``"lowres"``, ``"fullres"``), or ``None``.
    spatial_key
        ``obsm`` key of the spot centres in full-resolution pixels.
    cmap
        Colour map of the expression values.
    spot_alpha
        Opacity of the spots.
    ax
        ``2 * len(genes)`` axes (observed, predicted per gene); a new figure when ``None``.
    figsize
        Size of a new figure.

    Returns
    -------
    The :class:`matplotlib.figure.Figure`.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import EllipseCollection
    from matplotlib.colors import Normalize

    spot_alpha = number(spot_alpha, "spot_alpha", minimum=0, maximum=1)
    data = _spatial_pred_data(adata, genes, pred_key=pred_key, layer=layer, library_id=library_id,
                              img_key=img_key, spatial_key=spatial_key)
    n = len(data["genes"])
    axes = axes_arg(ax, 2 * n, "observed, predicted per gene")
    if axes is None:
        fig, axes = plt.subplots(n, 2, figsize=figsize or (8, 3.6 * n), squeeze=False,
                                 layout="constrained")
        axes = axes.ravel()
    else:
        fig = axes[0].figure
    x0, x1, y1, y0 = data["extent"]
    d = data["diameter"]
    for j, g in enumerate(data["genes"]):
        norm = Normalize(g["vmin"], g["vmax"])
        for k, (values, title) in enumerate(((g["observed"], f"{g['gene']} observed"),
                                             (g["predicted"], f"{g['gene']} predicted, PCC={g['pcc']:.2f}"))):
            a = axes[2 * j + k]
            if data["image"] is not None:
                a.imshow(data["image"])
            coll = EllipseCollection(d, d, 0.0, units="xy", offsets=data["xy"],
                                     offset_transform=a.transData, cmap=cmap, norm=norm, alpha=spot_alpha)
            coll.set_array(np.asarray(values))
            a.add_collection(coll)
            a.set_xlim(x0, x1)
            a.set_ylim(y1, y0)
            a.set_aspect("equal")
            a.set_xticks([])
            a.set_yticks([])
            a.set_title(title, fontsize=9)
        fig.colorbar(coll, ax=[axes[2 * j], axes[2 * j + 1]], shrink=0.8, label="log-normalised")
    return fig
