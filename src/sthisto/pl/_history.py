"""``sthisto.pl.training_history``: per-epoch loss components and validation PCC of a model."""

from __future__ import annotations

import numpy as np
import pandas as pd

_LOSSES = ("loss", "gene", "ranking", "recon")


def history_frame(model) -> pd.DataFrame:
    """Long-format history: one row per (epoch, quantity), quantities in a fixed order.

    Returns
    -------
    DataFrame with columns ``epoch``, ``quantity``, ``value``, ``axis`` (``"loss"`` or ``"pcc"``).
    """
    hist = getattr(model, "history", None)
    if not isinstance(hist, pd.DataFrame) or hist.empty or "epoch" not in hist:
        raise ValueError("the model has no training history; fit it with sthisto.tl.fit first.")
    cols = [c for c in (*_LOSSES, "val_pcc") if c in hist.columns]
    long = hist.melt(id_vars="epoch", value_vars=cols, var_name="quantity", value_name="value")
    long["axis"] = np.where(long["quantity"] == "val_pcc", "pcc", "loss")
    return long


def training_history(model, *, ax=None, log_scale: bool = True):
    """Plot the per-epoch loss components (and validation PCC on a second axis).

    Parameters
    ----------
    model
        A fitted :class:`sthisto.tl.M2TGLGO` (its ``history``).
    ax
        Matplotlib axes to draw into; a new figure when ``None``.
    log_scale
        Logarithmic y axis for the losses.

    Returns
    -------
    The matplotlib :class:`~matplotlib.axes.Axes` of the losses (the validation PCC, when
    recorded, is on ``ax.pcc_ax``, a twin axis).
    """
    import matplotlib.pyplot as plt

    data = history_frame(model)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, part in data[data["axis"] == "loss"].groupby("quantity", sort=False):
        ax.plot(part["epoch"], part["value"], label=name, lw=1.5 if name == "loss" else 1.0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log_scale and (data.loc[data["axis"] == "loss", "value"] > 0).all():
        ax.set_yscale("log")
    handles, labels = ax.get_legend_handles_labels()
    pcc = data[data["axis"] == "pcc"]
    ax.pcc_ax = None
    if not pcc.empty:
        twin = ax.twinx()
        (line,) = twin.plot(pcc["epoch"], pcc["value"], color="k", ls="--", label="val PCC")
        twin.set_ylabel("validation mean PCC")
        handles.append(line)
        labels.append("val PCC")
        ax.pcc_ax = twin
    ax.legend(handles, labels, frameon=False, fontsize="small")
    ax.set_title("M2TGLGO training")
    return ax
