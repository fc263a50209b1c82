"""Per-gene metrics of predicted expression as pure array functions: PCC, Spearman, MSE, MAE, GGC.

A per-gene PCC is *undefined* when the prediction or the observation of that gene is
constant over the spots (e.g. the mean predictor, or a gene never detected in the test
section). Such genes get ``NaN`` and are counted in the summary; they are never dropped
silently, and summary means are over the genes where the PCC is defined.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

METRICS = ("pcc", "spearman", "mse", "mae")


def _constant_columns(x: np.ndarray) -> np.ndarray:
    """Columns whose values are all equal (up to float64 round-off)."""
    spread = np.ptp(x, axis=0) if x.shape[0] else np.zeros(x.shape[1])
    scale = np.maximum(np.abs(x).max(axis=0, initial=0.0), 1.0)
    return spread <= 1e-12 * scale


def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns of ``a`` and ``b`` (NaN where undefined)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two 2-D arrays of one shape, got {a.shape} and {b.shape}")
    ac = a - a.mean(axis=0)
    bc = b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ac * bc).sum(axis=0) / np.sqrt((ac**2).sum(axis=0) * (bc**2).sum(axis=0))
    r[_constant_columns(a) | _constant_columns(b) | (a.shape[0] < 2)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=0, method="average")


def gene_metrics(y_true: np.ndarray, y_pred: np.ndarray, genes: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-gene PCC, Spearman, MSE and MAE of ``y_pred`` against ``y_true``.

    Parameters
    ----------
    y_true, y_pred
        Arrays of shape (n_spots, n_genes).
    genes
        Gene names (the index of the result); ``None`` numbers the genes.

    Returns
    -------
    DataFrame indexed by gene with columns ``pcc``, ``spearman``, ``mse``, ``mae`` and
    ``pcc_undefined`` (``"constant_prediction"``, ``"constant_observed"``, ``"both"`` or ``""``).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be 2-D and equal")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError("predictions and observations must be finite for the evaluated genes.")
    pred_const = _constant_columns(y_pred)
    true_const = _constant_columns(y_true)
    reason = np.where(
        pred_const & true_const, "both",
        np.where(pred_const, "constant_prediction", np.where(true_const, "constant_observed", "")),
    )
    err = y_pred - y_true
    index = pd.Index(list(genes) if genes is not None else range(y_true.shape[1]), name="gene")
    return pd.DataFrame(
        {
            "pcc": pearson_columns(y_true, y_pred),
            "spearman": pearson_columns(_ranks(y_true), _ranks(y_pred)),
            "mse": (err**2).mean(axis=0),
            "mae": np.abs(err).mean(axis=0),
            "pcc_undefined": reason,
        },
        index=index,
    )


def summarize(table: pd.DataFrame) -> dict:
    """Summary of a :func:`gene_metrics` table: means/medians over defined genes, counts."""
    defined = table["pcc"].notna()
    out = {
        "n_genes": int(len(table)),
        "n_pcc_defined": int(defined.sum()),
        "n_pcc_undefined": int((~defined).sum()),
        "pcc_undefined_genes": [str(g) for g in table.index[~defined]],
    }
    for metric in METRICS:
        values = table[metric].dropna().to_numpy()
        out[f"mean_{metric}"] = float(values.mean()) if values.size else float("nan")
        out[f"median_{metric}"] = float(np.median(values)) if values.size else float("nan")
    return out


def gene_gene_corr(x: np.ndarray) -> np.ndarray:
    """Gene × gene Pearson correlation of the columns of ``x`` (NaN rows for constant genes)."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(axis=0)
    norm = np.sqrt((xc**2).sum(axis=0))
    const = _constant_columns(x)
    norm[const] = np.nan
    z = xc / norm
    c = np.clip(z.T @ z, -1.0, 1.0)
    np.fill_diagonal(c, np.where(const, np.nan, 1.0))
    return c


def ggc_arrays(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, np.ndarray]:
    """GGC of two (n_spots, n_genes) arrays and the mask of genes it used.

    The Pearson correlation between the upper triangles of the observed and predicted
    gene-gene correlation matrices, over genes that are not constant in either array.
    """
    keep = ~(_constant_columns(np.asarray(y_true, float)) | _constant_columns(np.asarray(y_pred, float)))
    if keep.sum() < 3:
        return float("nan"), keep
    obs = gene_gene_corr(np.asarray(y_true)[:, keep])
    pred = gene_gene_corr(np.asarray(y_pred)[:, keep])
    iu = np.triu_indices(int(keep.sum()), k=1)
    r = pearson_columns(obs[iu][:, None], pred[iu][:, None])[0]
    return float(r), keep



def mean_pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-gene PCC over the genes where it is defined (0 when it is defined for none)."""
    r = pearson_columns(y_true, y_pred)
    return float(np.nanmean(r)) if np.isfinite(r).any() else 0.0
