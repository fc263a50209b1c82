"""The demo's printed table and ``report.md``: what each number is, labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

METHODS = ("m2tglgo", "ridge", "ridge_context", "knn", "hest_probe", "mean")
PROTOCOL_ORDER = ("paper", "selected", "hest")
#: one line per method, printed under the table
METHOD_LABELS = {
    "m2tglgo": "M2TGLGO (epochs chosen by inner validation on the training sections)",
    "ridge": "ridge regression, alpha chosen by inner validation on the training sections",
    "ridge_context": "ridge on [features, mean of the spot-graph neighbours' features], alpha by inner validation",
    "knn": "k-nearest-neighbour regression, k chosen by inner validation",
    "hest_probe": "the HEST-Benchmark linear probe (PCA-256 + nearly unregularised ridge), untuned",
    "mean": "the training mean of each gene (PCC undefined; anchors MSE)",
}


def summary_table(df: pd.DataFrame, *, metric: str = "pcc") -> pd.DataFrame:
    """Mean ± sd over test sections of each protocol's headline ``metric``, per method and gene set.

    Rows are ``"protocol / gene set"`` in the order paper, selected, hest; columns are methods.
    """
    sub = df[df["metric"] == metric]
    table = sub.groupby(["protocol", "gene_set", "method"], sort=False)["value"].agg(["mean", "std"])
    table["cell"] = [
        "undefined" if np.isnan(m) else f"{m:.3f} ± {0.0 if np.isnan(s) else s:.3f}"
        for m, s in zip(table["mean"], table["std"], strict=True)
    ]
    wide = table["cell"].unstack("method")
    order = {p: i for i, p in enumerate(PROTOCOL_ORDER)}
    wide = wide.loc[sorted(wide.index, key=lambda pg: (order.get(pg[0], len(order)), pg[1] != "hvg"))]
    wide.index = [f"{p} / {g}" for p, g in wide.index]
    wide.columns.name = None
    return wide[[m for m in METHODS if m in wide.columns] + [m for m in wide.columns if m not in METHODS]]


def legend(df: pd.DataFrame) -> list[str]:
    """Return lines saying what each protocol and each method in ``df`` is."""
    methods = [m for m in METHODS if m in set(df["method"])]
    return ([f"  {p}: {d}" for p, d in df.attrs.get("protocols", {}).items()]
            + [f"  {m}: {METHOD_LABELS[m]}" for m in methods])


def choices(df: pd.DataFrame) -> pd.DataFrame:
    """Return what each tuned method chose by inner validation in each fold (HVG fits)."""
    t = pd.DataFrame(df.attrs.get("timings", []))
    if t.empty:
        return t
    t = t[t["gene_set"] == "hvg"]
    return pd.DataFrame({"fold": t["fold"], "method": t["method"], "fit_s": t["fit_s"].round(1),
                         "choice": t["choice"].map(lambda c: ", ".join(f"{k}={v:g}" for k, v in c.items()))})


def write_report(out: Path, df: pd.DataFrame, *, recipe: str, timings: dict[str, float],
                 figures: list[str]) -> Path:
    """Write ``out/report.md`` and return its path."""
    lines = [
        "# sthisto demo report",
        "",
        "Bundled HER2ST sections C2, C3, C4 (one patient; legacy ST, 100 µm spots; H&E cropped around the",
        "spots), the 785-gene Hist2ST panel, leave-one-section-out. Image features are the weights-free",
        f"colour/texture extractor plus nuclei morphology and topology. M2TGLGO: {recipe}.",
        "",
        "## Mean ± sd over test sections of the per-gene PCC",
        "",
        summary_table(df).to_markdown(),
        "",
        "## Mean MSE over test sections (log-normalised expression)",
        "",
        summary_table(df[df["protocol"] == "paper"], metric="mse").to_markdown(),
        "",
        "What the labels mean:",
        "",
        *[f"- {line.strip()}" for line in legend(df)],
        "",
        "## What inner validation chose (HVG fits)",
        "",
        choices(df).to_markdown(index=False),
        "",
        "## Step timings (s)",
        "",
        *[f"- {k}: {v:.1f}" for k, v in timings.items()],
        "",
        "## Figures",
        "",
        *[f"![{f}]({f})" for f in figures],
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
