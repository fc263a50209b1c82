"""``sthisto.pl.training_history``: per-epoch loss components and validation PCC of a model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._axes import one_axis

_LOSSES = ("loss", "gene", "ranking", "recon")


def _default_run(hist: pd.DataFrame) -> str | None:
    if "run" not in hist:
        return None
    runs = list(dict.fromkeys(hist["run"]))
    return "member:0" if "member:0" in runs else runs[0]


def history_frame(model, run: str | None = None) -> pd.DataFrame:
    """Long-format history of one training run: one row per (epoch, quantity), in a fixed order.

    Parameters
    ----------
    model
        A fitted :class:`sthisto.tl.M2TGLGO` (or anything with a ``history`` DataFrame).
    run
        Which run of ``model.history`` (``"member:<k>"`` or ``"inner:<i>"``); default the
        first ensemble member.

    Returns
    -------
    DataFrame with columns ``epoch``, ``quantity``, ``value``, ``axis`` (``"loss"`` or ``"pcc"``).
    """
    hist = getattr(model, "history", None)
    if not isinstance(hist, pd.DataFrame) or hist.empty or "epoch" not in hist:
        raise ValueError("the model has no training history; fit it with sthisto.tl.fit first.")
    run = _default_run(hist) if run is None else run
    if run is not None:
        if "run" not in hist or run not in set(hist["run"]):
            runs = sorted(set(hist["run"])) if "run" in hist else []
            raise ValueError(f"run {run!r} is not in the model's history; runs: {runs}")
        hist = hist[hist["run"] == run]
    cols = [c for c in (*_LOSSES, "val_pcc") if c in hist.columns]
    long = hist.melt(id_vars="epoch", value_vars=cols, var_name="quantity", value_name="value")
    long["axis"] = np.where(long["quantity"] == "val_pcc", "pcc", "loss")
    return long


def inner_curves(model) -> pd.DataFrame:
    """Return the validation PCC of each inner-validation run and their mean (what chose the epochs).

    Returns
    -------
    DataFrame with columns ``run`` (``"inner:<i>"`` or ``"mean"``), ``epoch``, ``val_pcc``;
    empty when the epochs were not chosen by inner validation.
    """
    hist = getattr(model, "history", pd.DataFrame())
    if "run" not in hist or "val_pcc" not in hist:
        return pd.DataFrame(columns=["run", "epoch", "val_pcc"])
    inner = hist[hist["run"].astype(str).str.startswith("inner:")].dropna(subset=["val_pcc"])
    if inner.empty:
        return pd.DataFrame(columns=["run", "epoch", "val_pcc"])
    mean = inner.groupby("epoch", as_index=False)["val_pcc"].mean().assign(run="mean")
    return pd.concat([inner[["run", "epoch", "val_pcc"]], mean[["run", "epoch", "val_pcc"]]], ignore_index=True)


def training_history(model, *, run: str | None = None, ax=None, log_scale: bool = True):
    """Plot the per-epoch loss components and the validation PCC behind the choice of epochs.

    The losses are those of one run (default: the first ensemble member). The second axis
    shows the validation PCC: with epochs chosen by inner validation, each inner split's
    curve, their mean and the chosen number of epochs; otherwise the run's own
    ``val_pcc`` (from ``val_adata``) when it was recorded.

    Parameters
    ----------
    model
        A fitted :class:`sthisto.tl.M2TGLGO` (its ``history``).
    run
        Run whose losses are drawn (``"member:<k>"`` or ``"inner:<i>"``).
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

    ax = one_axis(ax, "the losses")
    data = history_frame(model, run)
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
    curves = inner_curves(model)
    ax.pcc_ax = None
    if not curves.empty or not pcc.empty:
        twin = ax.twinx()
        twin.set_ylabel("validation mean PCC")
        ax.pcc_ax = twin
    if not curves.empty:
        for name, part in curves[curves["run"] != "mean"].groupby("run", sort=False):
            twin.plot(part["epoch"], part["val_pcc"], color="0.6", lw=0.8, ls=":", label=f"{name} val PCC")
        mean = curves[curves["run"] == "mean"]
        (line,) = twin.plot(mean["epoch"], mean["val_pcc"], color="k", ls="--", label="inner val PCC (mean)")
        handles.append(line)
        labels.append("inner val PCC (mean)")
        chosen = getattr(model, "selection", {}).get("epochs")
        if chosen is not None:
            vline = twin.axvline(chosen, color="tab:red", lw=1, label=f"chosen: {chosen} epochs")
            handles.append(vline)
            labels.append(f"chosen: {chosen} epochs")
    elif not pcc.empty:
        (line,) = twin.plot(pcc["epoch"], pcc["value"], color="k", ls="--", label="val PCC")
        handles.append(line)
        labels.append("val PCC")
    ax.legend(handles, labels, frameon=False, fontsize="small")
    ax.set_title("M2TGLGO training")
    return ax
