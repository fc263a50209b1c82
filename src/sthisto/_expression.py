"""The one expression transform shared by the model, the baselines, the evaluation and Gene2Vec.

M2TGLGO, the baselines and :func:`sthisto.tl.evaluate` all compare predictions with the
same observed values, computed here and nowhere else:

* ``"log_normalized"`` (default): counts scaled to ``target_sum`` (1e4) per spot over
  *all* genes of the section (as :func:`scanpy.pp.normalize_total`), then ``log1p``,
  then restricted to the requested genes.
* ``"log1p"``: ``log1p`` of the raw counts (the HEST-Benchmark target).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from sthisto._validate import counts_matrix, layer_matrix, unique_var_names

TARGET_SUM = 1e4
TRANSFORMS = ("log_normalized", "log1p")


def gene_indices(adata: AnnData, genes: Sequence[str] | None) -> np.ndarray:
    """Positions of ``genes`` in ``adata.var_names`` (all genes when ``None``).

    Raises a ``KeyError`` listing the genes that the section lacks, and a ``ValueError``
    when ``var_names`` are not unique (a gene would have several positions).
    """
    unique_var_names(adata)
    if genes is None:
        return np.arange(adata.n_vars)
    genes = list(genes)
    idx = adata.var_names.get_indexer(genes)
    if (idx < 0).any():
        missing = [g for g, i in zip(genes, idx, strict=True) if i < 0]
        raise KeyError(
            f"{len(missing)} gene(s) not in adata.var_names, e.g. {missing[:5]}; "
            "choose genes present in every section (see sthisto.tl.select_genes)."
        )
    return idx


def targets(
    adata: AnnData,
    genes: Sequence[str] | None = None,
    layer: str | None = None,
    *,
    transform: str = "log_normalized",
    target_sum: float = TARGET_SUM,
    dtype=np.float64,
) -> np.ndarray:
    """Observed expression of ``genes`` as a dense (n_obs, n_genes) array.

    Parameters
    ----------
    adata
        One section with raw counts in ``X`` or ``layers[layer]``.
    genes
        Genes to return, in this order; ``None`` for all genes.
    layer
        Layer holding the raw counts; ``None`` uses ``X``.
    transform
        ``"log_normalized"`` (``normalize_total(target_sum)`` over all genes + ``log1p``)
        or ``"log1p"`` (``log1p`` of the raw counts, HEST-Benchmark style).
    target_sum
        Counts per spot after normalisation.
    dtype
        Floating dtype of the result.

    Returns
    -------
    Dense array of shape ``(adata.n_obs, len(genes))``.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    x, where = layer_matrix(adata, layer)
    counts_matrix(x, where=where)
    idx = gene_indices(adata, genes)
    if sp.issparse(x):
        x = sp.csr_matrix(x)
        sub = np.asarray(x[:, idx].toarray(), dtype=np.float64)
        total = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
    else:
        x = np.asarray(x)
        sub = np.asarray(x[:, idx], dtype=np.float64)
        total = x.sum(axis=1, dtype=np.float64)
    if transform == "log_normalized":
        scale = np.divide(target_sum, total, out=np.zeros_like(total), where=total > 0)
        sub *= scale[:, None]
    return np.log1p(sub).astype(dtype, copy=False)


def log_normalized(
    adata: AnnData,
    genes: Sequence[str] | None = None,
    layer: str | None = None,
    *,
    dtype=np.float64,
) -> np.ndarray:
    """``normalize_total(1e4)`` + ``log1p`` of the counts, restricted to ``genes``.

    The training target of :func:`sthisto.tl.fit` and the observed values of
    :func:`sthisto.tl.evaluate`. Spots with zero counts stay zero.

    Parameters
    ----------
    adata
        One section with raw counts in ``X`` or ``layers[layer]``.
    genes
        Genes to return, in this order; ``None`` for all genes.
    layer
        Layer holding the raw counts; ``None`` uses ``X``.
    dtype
        Floating dtype of the result.

    Returns
    -------
    Dense array of shape ``(adata.n_obs, len(genes))``.
    """
    return targets(adata, genes, layer, transform="log_normalized", dtype=dtype)
