"""Choose the genes to model and evaluate, from the training sections only.

Both flavours work on the log-normalised targets (``normalize_total(1e4)`` + ``log1p``,
:func:`sthisto._expression.log_normalized`) of the genes present in *every* section,
with the spots of all sections pooled:

* ``"hvg"``: the ``n_top`` genes with the largest variance of the pooled log-normalised
  expression (the "top-50 most variable genes" of the M2TGLGO paper and HEST-Benchmark).
  Pooled variance includes differences between section means.
* ``"heg"``: the ``n_top`` genes with the largest mean pooled log-normalised expression
  (the highly expressed genes of the HisToGene/Hist2ST evaluations).

Ties are broken by the order of the genes in the first section, so the choice is
deterministic. Pass only the training sections: the test section must not influence it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto._expression import log_normalized
from sthisto._validate import integer, raw_counts, unique_var_names

FLAVORS = ("hvg", "heg")


def sections(adatas, name: str = "adatas") -> list[AnnData]:
    """Return ``adatas`` (one AnnData or a list of them) as a non-empty list, raising otherwise."""
    if isinstance(adatas, AnnData):
        return [adatas]
    if adatas is None or isinstance(adatas, str) or not hasattr(adatas, "__iter__"):
        raise TypeError(f"{name} must be a list of AnnData sections, got {type(adatas).__name__}.")
    out = list(adatas)
    if not out:
        raise ValueError(f"{name} is empty: expected at least one section (AnnData).")
    for i, a in enumerate(out):
        if not isinstance(a, AnnData):
            raise TypeError(f"{name}[{i}] must be an AnnData section, got {type(a).__name__}.")
    return out


def common_genes(adatas: Sequence[AnnData]) -> list[str]:
    """Genes present in every section, in the order of the first section."""
    adatas = sections(adatas)
    for a in adatas:
        unique_var_names(a)
    shared = set(adatas[0].var_names)
    for a in adatas[1:]:
        shared &= set(a.var_names)
    return [g for g in adatas[0].var_names if g in shared]


def gene_scores(
    adatas: Sequence[AnnData], *, flavor: str = "hvg", layer: str | None = None
) -> pd.Series:
    """Score of every common gene (pooled variance or mean of log-normalised expression).

    Parameters
    ----------
    adatas
        Training sections.
    flavor
        ``"hvg"`` (variance) or ``"heg"`` (mean).
    layer
        Layer holding raw counts; ``None`` uses ``X``.

    Returns
    -------
    A :class:`pandas.Series` indexed by gene, in the order of the first section.
    """
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {FLAVORS}, got {flavor!r}")
    adatas = sections(adatas)
    for i, a in enumerate(adatas):  # log-normalising values that are not counts would rank nonsense
        raw_counts(a, layer, where=f"adatas[{i}]")
    genes = common_genes(adatas)
    if not genes:
        raise ValueError("the sections share no gene names; harmonise var_names first.")
    n = 0
    total = np.zeros(len(genes))
    total_sq = np.zeros(len(genes))
    for a in adatas:
        x = log_normalized(a, genes, layer)
        n += x.shape[0]
        total += x.sum(axis=0)
        total_sq += (x**2).sum(axis=0)
    if n < 2:
        raise ValueError("need at least two spots over the training sections.")
    mean = total / n
    if flavor == "heg":
        score = mean
    else:
        score = np.maximum(total_sq / n - mean**2, 0.0) * n / (n - 1)
    return pd.Series(score, index=pd.Index(genes, name="gene"), name=flavor)


def select_genes(
    adatas: Sequence[AnnData],
    *,
    flavor: str = "hvg",
    n_top: int = 50,
    layer: str | None = None,
) -> list[str]:
    """Select the top genes of the training sections (HVG or HEG).

    Parameters
    ----------
    adatas
        The *training* sections (a list of AnnData with raw counts); one AnnData works too.
    flavor
        ``"hvg"``: largest variance of log-normalised expression pooled over the spots of
        all sections; ``"heg"``: largest mean log-normalised expression.
    n_top
        Number of genes; all common genes when fewer exist (logged).
    layer
        Layer holding raw counts; ``None`` uses ``X``.

    Returns
    -------
    Gene names, best first, present in every section.
    """
    from sthisto._logging import logger

    n_top = integer(n_top, "n_top", minimum=1)
    scores = gene_scores(adatas, flavor=flavor, layer=layer)
    if len(scores) < n_top:
        logger.warning("only %d common genes, fewer than n_top=%d: using all", len(scores), n_top)
    order = np.argsort(-scores.to_numpy(), kind="stable")[:n_top]
    return scores.index[order].tolist()
