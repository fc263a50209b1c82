"""Observed vs predicted gene-gene correlation heatmaps (the paper's GGC figure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from anndata import AnnData

from sthisto import _constants as K
from sthisto._expression import gene_indices, targets
from sthisto.tl._evaluate import _predictions, _resolve_genes
from sthisto.tl._metrics import gene_gene_corr, ggc_arrays

from ._axes import axes_arg


def _gene_correlation_data(
    adata: AnnData,
    genes: Sequence[str] | None = None,
    *,
    pred_key: str = K.PRED,
    layer: str | None = None,
    cluster: bool = True,
) -> dict[str, Any]:
    """Matrices drawn by :func:`gene_correlation`.

    Returns a dict with ``genes`` (the order drawn; genes constant in the observation or
    the prediction are left out and listed in ``dropped``), ``observed`` and ``predicted``
    gene × gene Pearson correlation matrices and ``ggc`` (their upper-triangle correlation).
    With ``cluster`` the genes are ordered by average-linkage clustering of the observed
    correlations (``1 - r`` distance); otherwise in the given order.
    """
    pred = _predictions(adata, pred_key)
    genes = _resolve_genes(adata, pred, genes)
    y = targets(adata, genes, layer)
    p = pred[:, gene_indices(adata, genes)]
    ggc, keep = ggc_arrays(y, p)
    if keep.sum() < 2:
        raise ValueError("fewer than two genes vary in both observation and prediction.")
    kept = [g for g, k in zip(genes, keep, strict=True) if k]
    obs, prd = gene_gene_corr(y[:, keep]), gene_gene_corr(p[:, keep])
    order = np.arange(len(kept))
    if cluster and len(kept) > 2:
        from scipy.cluster.hierarchy import leaves_list, linkage
        from scipy.spatial.distance import squareform

        dist = np.clip(1.0 - obs, 0.0, 2.0)
        np.fill_diagonal(dist, 0.0)
        order = leaves_list(linkage(squareform(dist, checks=False), method="average"))
    return {
        "genes": [kept[i] for i in order],
        "observed": obs[np.ix_(order, order)],
        "predicted": prd[np.ix_(order, order)],
        "ggc": ggc,
        "dropped": [g for g, k in zip(genes, keep, strict=True) if not k],
    }


def gene_correlation(
    adata: AnnData,
    genes: Sequence[str] | None = None,
    *,
    pred_key: str = K.PRED,
    layer: str | None = None,
    cluster: bool = True,
    cmap: str = "RdBu_r",
    show_labels: bool | None = None,
    ax=None,
    figsize: tuple[float, float] = (9.0, 4.2),
):
    """Heatmaps of the observed and predicted gene-gene correlation matrices, side by side.

    Both use the colour range [-1, 1]; the figure title gives the GGC (correlation between
    the two matrices, :func:`sthisto.tl.gene_correlation_recovery`).

    Parameters
    ----------
    adata
        Section with predictions in ``layers[pred_key]``.
    genes
        Genes to show; ``None`` uses every predicted gene.
    pred_key
        Layer holding the predictions.
    layer
        Layer holding observed raw counts; ``None`` uses ``X``.
    cluster
        Order genes by hierarchical clustering of the observed correlations.
    cmap
        Diverging colour map.
    show_labels
        Write gene names on the axes; default when at most 40 genes.
    ax
        Two axes (observed, predicted); a new figure when ``None``.
    figsize
        Size of a new figure.

    Returns
    -------
    The :class:`matplotlib.figure.Figure`.
    """
    import matplotlib.pyplot as plt

    axes = axes_arg(ax, 2, "observed, predicted")
    data = _gene_correlation_data(adata, genes, pred_key=pred_key, layer=layer, cluster=cluster)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    else:
        fig = axes[0].figure
    n = len(data["genes"])
    labels = n <= 40 if show_labels is None else show_labels
    for a, key in zip(axes, ("observed", "predicted"), strict=True):
        im = a.imshow(data[key], cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
        a.set_title(f"{key} gene-gene correlation", fontsize=9)
        if labels:
            a.set_xticks(range(n), data["genes"], rotation=90, fontsize=6)
            a.set_yticks(range(n), data["genes"], fontsize=6)
        else:
            a.set_xticks([])
            a.set_yticks([])
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="Pearson r")
    fig.suptitle(f"GGC = {data['ggc']:.3f} ({n} genes)", fontsize=10)
    return fig
