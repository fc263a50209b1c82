"""Per-gene evaluation of predicted expression: PCC, Spearman, MSE, MAE, and GGC.

Pure array functions (:func:`gene_metrics`, :func:`pearson_columns`, :func:`gene_gene_corr`)
are separate from the AnnData wrappers (:func:`evaluate`, :func:`gene_correlation_recovery`).

A per-gene PCC is *undefined* when the prediction or the observation of that gene is
constant over the spots (e.g. the mean predictor, or a gene never detected in the test
section). Such genes get ``NaN`` and are counted in the summary; they are never dropped
silently, and summary means are over the genes where the PCC is defined.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._expression import TRANSFORMS, gene_indices, targets
from sthisto._logging import logger
from sthisto._utils import copy_or_self, save_data
from sthisto._validate import raw_counts

METRICS = ("pcc", "spearman", "mse", "mae")
_VAR_KEYS = {"pcc": K.PCC, "spearman": K.SPEARMAN, "mse": K.MSE, "mae": K.MAE}


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


def _predictions(adata: AnnData, pred_key: str) -> np.ndarray:
    if pred_key not in adata.layers:
        raise KeyError(
            f"adata.layers[{pred_key!r}] is missing: run `sthisto.tl.predict` first "
            "(or pass pred_key= naming the layer that holds the predictions)."
        )
    x = adata.layers[pred_key]
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _resolve_genes(adata: AnnData, pred: np.ndarray, genes: Sequence[str] | None) -> list[str]:
    """Return the requested genes, or every gene with a non-NaN prediction when ``None``."""
    if genes is None:
        predicted = ~np.isnan(pred).all(axis=0)
        if not predicted.any():
            raise ValueError("the prediction layer is all NaN: no gene was predicted.")
        return adata.var_names[predicted].tolist()
    genes = [genes] if isinstance(genes, str) else list(genes)
    if not genes:
        raise ValueError("genes is empty.")
    idx = gene_indices(adata, genes)
    bad = [g for g, i in zip(genes, idx, strict=True) if not np.isfinite(pred[:, i]).all()]
    if bad:
        raise ValueError(
            f"{len(bad)} requested gene(s) have missing (NaN) predictions, e.g. {bad[:5]}; "
            "evaluate only genes the model predicts (genes=None does that)."
        )
    return genes


def var_keys(key_added: str = K.METRICS) -> dict[str, str]:
    """``var`` column of each metric: ``sthisto_pcc`` etc., or ``{key_added}_pcc`` for other keys."""
    if key_added == K.METRICS:
        return dict(_VAR_KEYS)
    return {m: f"{key_added}_{m}" for m in METRICS}


@doc_params
def evaluate(
    adata: AnnData,
    *,
    pred_key: str = K.PRED,
    layer: str | None = None,
    genes: Sequence[str] | None = None,
    transform: str = "log_normalized",
    key_added: str = K.METRICS,
    copy: bool = False,
) -> AnnData | None:
    """Compare predicted with observed expression, gene by gene.

    Observed values are the model's targets (:func:`sthisto._expression.targets`):
    ``normalize_total(1e4)`` + ``log1p`` of the counts in ``layer``/``X``.

    Parameters
    ----------
    {adata}
    pred_key
        Layer holding the predictions (written by :func:`sthisto.tl.predict`).
    layer
        Layer holding the observed raw counts; ``None`` uses ``X``.
    genes
        Genes to evaluate; ``None`` evaluates every gene with a non-NaN prediction.
    transform
        ``"log_normalized"`` (default, the training target) or ``"log1p"`` (HEST-Benchmark).
    key_added
        Key in ``uns`` of the summary. With the default the ``var`` columns are
        ``sthisto_pcc``, ``sthisto_spearman``, ``sthisto_mse``, ``sthisto_mae``; with another
        key they are ``{{key_added}}_pcc`` etc.
    {copy}

    Returns
    -------
    {returns_copy} Writes

    ``var['sthisto_pcc']``, ``var['sthisto_spearman']``, ``var['sthisto_mse']``, ``var['sthisto_mae']``
        Per-gene metrics; ``NaN`` for genes not evaluated and for undefined PCC/Spearman
        (constant prediction or constant observation).
    ``uns[key_added]``
        ``summary`` (``n_genes``, ``n_pcc_defined``, ``n_pcc_undefined``,
        ``pcc_undefined_genes``, ``mean_pcc``, ``median_pcc`` and the same for Spearman,
        MSE, MAE; means over genes with a defined value), ``var_keys`` and ``params``.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    adata = copy_or_self(adata, copy)
    pred = _predictions(adata, pred_key)
    raw_counts(adata, layer, where="adata")
    genes = _resolve_genes(adata, pred, genes)
    idx = gene_indices(adata, genes)
    observed = targets(adata, genes, layer, transform=transform)
    table = gene_metrics(observed, pred[:, idx], genes)
    summary = summarize(table)
    if summary["n_pcc_undefined"]:
        logger.warning(
            "PCC undefined for %d of %d genes (constant prediction or observation): %s",
            summary["n_pcc_undefined"], summary["n_genes"], summary["pcc_undefined_genes"][:5],
        )
    columns = var_keys(key_added)
    for metric, column in columns.items():
        values = np.full(adata.n_vars, np.nan)
        values[idx] = table[metric].to_numpy()
        save_data(adata, attr="var", key=column, data=values)
    save_data(
        adata,
        attr="uns",
        key=key_added,
        data={
            "summary": summary,
            "var_keys": columns,
            "params": {"pred_key": pred_key, "layer": layer, "transform": transform,
                       "genes": list(map(str, genes))},
        },
    )
    return adata if copy else None


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


@doc_params
def gene_correlation_recovery(
    adata: AnnData,
    *,
    pred_key: str = K.PRED,
    layer: str | None = None,
    genes: Sequence[str] | None = None,
) -> float:
    """How well predictions recover gene-gene correlations (the paper's GGC).

    Computes the gene × gene Pearson correlation matrix of the observed targets and of
    the predictions over the spots, and returns the Pearson correlation between their
    upper triangles. Genes constant in either are left out (and logged).

    Parameters
    ----------
    {adata}
    pred_key
        Layer holding the predictions.
    layer
        Layer holding the observed raw counts; ``None`` uses ``X``.
    genes
        Genes to use; ``None`` uses every gene with a non-NaN prediction.

    Returns
    -------
    The GGC, a float in [-1, 1]; ``NaN`` when fewer than three genes vary in both.
    """
    pred = _predictions(adata, pred_key)
    genes = _resolve_genes(adata, pred, genes)
    idx = gene_indices(adata, genes)
    r, keep = ggc_arrays(targets(adata, genes, layer), pred[:, idx])
    if not keep.all():
        logger.warning("GGC leaves out %d constant gene(s)", int((~keep).sum()))
    return r
