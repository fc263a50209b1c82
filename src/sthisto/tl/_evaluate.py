"""``sthisto.tl.evaluate`` and ``gene_correlation_recovery``: metrics of predictions stored on AnnData.

The metrics themselves are pure array functions in :mod:`sthisto.tl._metrics`, which
also says when a per-gene PCC is undefined (counted, never dropped silently).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._expression import TRANSFORMS, gene_indices, targets
from sthisto._logging import logger
from sthisto._utils import Outputs, copy_or_self
from sthisto._validate import anndata, key_name, name_list, raw_counts

from ._metrics import METRICS, gene_metrics, ggc_arrays, summarize

_VAR_KEYS = {"pcc": K.PCC, "spearman": K.SPEARMAN, "mse": K.MSE, "mae": K.MAE}


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
    genes = list(name_list(genes, "genes"))
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
    key_added = key_name(key_added)
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
    out = Outputs()
    for metric, column in columns.items():
        values = np.full(adata.n_vars, np.nan)
        values[idx] = table[metric].to_numpy()
        out.add("var", column, values)
    out.add("uns", key_added, {
        "summary": summary,
        "var_keys": columns,
        "params": {"pred_key": pred_key, "layer": layer, "transform": transform, "genes": list(map(str, genes))},
    })
    out.write(adata)
    return adata if copy else None


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
    anndata(adata)
    pred = _predictions(adata, pred_key)
    raw_counts(adata, layer, where="adata")
    genes = _resolve_genes(adata, pred, genes)
    idx = gene_indices(adata, genes)
    r, keep = ggc_arrays(targets(adata, genes, layer), pred[:, idx])
    if not keep.all():
        logger.warning("GGC leaves out %d constant gene(s)", int((~keep).sum()))
    return r
