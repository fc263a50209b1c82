"""Per-section PCC of each method and gene set from :func:`sthisto.tl.cross_validate`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sthisto._validate import key_name, name_list

from ._axes import one_axis


def _cv_summary_data(
    df: pd.DataFrame,
    *,
    metric: str = "pcc",
    protocol: str = "paper",
    methods: Sequence[str] | None = None,
    gene_sets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Values drawn by :func:`cv_summary`.

    Returns a dict with ``methods`` and ``gene_sets`` (drawing order: as first seen in
    ``df`` unless given), ``values`` ``{(gene_set, method): finite values, one per test
    section/fold}``, ``n_undefined`` ``{(gene_set, method): number of NaN values}`` (e.g.
    the mean predictor's undefined PCC) and ``label`` (the protocol's description).
    """
    need = {"method", "gene_set", "protocol", "metric", "value"}
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be the DataFrame returned by sthisto.tl.cross_validate, got {type(df).__name__}.")
    if not need <= set(df.columns):
        raise ValueError(f"df must be the output of sthisto.tl.cross_validate (columns {sorted(need)}).")
    metric = key_name(metric, "metric", what="a metric name such as 'pcc'")
    protocol = key_name(protocol, "protocol", what="a protocol name such as 'paper'")
    sub = df[(df["protocol"] == protocol) & (df["metric"] == metric)]
    if sub.empty:
        raise ValueError(
            f"no rows with protocol={protocol!r} and metric={metric!r}; available protocols "
            f"{sorted(df['protocol'].unique())}, metrics {sorted(df['metric'].unique())}."
        )
    methods = _subset(sub["method"], methods, "methods")
    gene_sets = _subset(sub["gene_set"], gene_sets, "gene_sets")
    values, n_undefined = {}, {}
    for gs in gene_sets:
        for m in methods:
            v = sub.loc[(sub["gene_set"] == gs) & (sub["method"] == m), "value"].to_numpy(float)
            values[(gs, m)] = v[np.isfinite(v)]
            n_undefined[(gs, m)] = int((~np.isfinite(v)).sum())
    label = df.attrs.get("protocols", {}).get(protocol, protocol)
    return {"methods": methods, "gene_sets": gene_sets, "values": values,
            "n_undefined": n_undefined, "label": label, "metric": metric, "protocol": protocol}


def _subset(column: pd.Series, chosen: Sequence[str] | None, name: str) -> list[str]:
    """Return the values of ``column`` in first-seen order, or ``chosen`` checked against them."""
    available = list(dict.fromkeys(column))
    if chosen is None:
        return available
    chosen = list(name_list(chosen, name, allow_empty=False))
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise ValueError(f"{name} {unknown} are not in df (for this protocol and metric: {available}).")
    return chosen


def cv_summary(
    df: pd.DataFrame,
    *,
    metric: str = "pcc",
    protocol: str = "paper",
    methods: Sequence[str] | None = None,
    gene_sets: Sequence[str] | None = None,
    ax=None,
    figsize: tuple[float, float] = (6.0, 3.6),
):
    """Box plot with points of a cross-validation metric: methods × gene sets.

    One box per gene set and method over the test sections (folds for ``hest``); the
    points are the individual sections. Methods whose metric is undefined (e.g. the mean
    predictor's PCC) are marked "undefined" with their count instead of a box.

    Parameters
    ----------
    df
        Output of :func:`sthisto.tl.cross_validate`.
    metric
        Metric to show (``"pcc"``, ``"mse"``, ``"ggc"``...).
    protocol
        Protocol rows to show; its description is in the title.
    methods, gene_sets
        Subsets and order; default: all, as first seen in ``df``.
    ax
        Axes to draw on; a new figure when ``None``.
    figsize
        Size of a new figure.

    Returns
    -------
    The :class:`matplotlib.axes.Axes`.
    """
    import matplotlib.pyplot as plt

    ax = one_axis(ax, "the box plot")
    data = _cv_summary_data(df, metric=metric, protocol=protocol, methods=methods, gene_sets=gene_sets)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    colors = plt.get_cmap("tab10")
    nm = len(data["methods"])
    width = 0.8 / nm
    rng = np.random.default_rng(0)  # deterministic jitter
    for g, gs in enumerate(data["gene_sets"]):
        for k, m in enumerate(data["methods"]):
            pos = g + (k - (nm - 1) / 2) * width
            v = data["values"][(gs, m)]
            c = colors(k % 10)
            if v.size:
                ax.boxplot(v, positions=[pos], widths=width * 0.8, patch_artist=True, showfliers=False,
                           boxprops={"facecolor": c, "alpha": 0.35, "edgecolor": c},
                           medianprops={"color": c}, whiskerprops={"color": c}, capprops={"color": c})
                ax.scatter(pos + rng.uniform(-0.15, 0.15, v.size) * width, v, s=14, color=c, zorder=3)
            if data["n_undefined"][(gs, m)]:
                ax.annotate(f"undefined\n(n={data['n_undefined'][(gs, m)]})", (pos, 0.02),
                            xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=6,
                            color=c, rotation=90)
    ax.set_xticks(range(len(data["gene_sets"])), data["gene_sets"])
    ax.set_xlim(-0.5, len(data["gene_sets"]) - 0.5)
    ax.set_ylabel(f"{metric} per test section")
    ax.set_title(f"{protocol}: {data['label']}", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors(k % 10), alpha=0.6) for k in range(nm)]
    ax.legend(handles, data["methods"], fontsize=7, frameon=False, loc="best")
    return ax
