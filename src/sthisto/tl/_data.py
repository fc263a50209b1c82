"""AnnData → arrays for M2TGLGO: modality features, spot graph, hop rings, targets, gene prior.

Everything here is numpy / scipy; :mod:`sthisto.tl._preprocessing` turns sections into model inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from sthisto import _constants as K
from sthisto._logging import logger

MIN_SPOTS = 7  # a 6-NN spot graph needs at least 7 spots
MAX_HOP = 3
_PRODUCERS = {
    "deep": "sthisto.pp.image_features",
    "morphology": "sthisto.pp.nuclei_features",
    "topology": "sthisto.pp.nuclei_features",
    "texture": "sthisto.pp.image_features(adata, model='texture')",
}


def modality_key(name: str) -> str:
    """Return the obsm key of a modality: a known name (``"deep"``…) or an obsm key itself."""
    return K.MODALITY_KEYS.get(name, name)


def check_section(adata: AnnData, where: str = "section") -> None:
    """Raise unless ``adata`` is an AnnData with enough spots for the 6-NN graph."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"{where}: expected an AnnData, got {type(adata).__name__}")
    if adata.n_obs < MIN_SPOTS:
        raise ValueError(
            f"{where} has {adata.n_obs} spots; M2TGLGO needs at least {MIN_SPOTS} "
            "(a 6-nearest-neighbour spot graph)."
        )


def read_features(
    adata: AnnData,
    modalities: Sequence[str],
    where: str = "section",
    *,
    columns: dict[str, list[str] | None] | None = None,
) -> dict[str, np.ndarray]:
    """Return ``{modality: (n_obs, d) float32}`` from ``obsm`` (DataFrames or arrays).

    With ``columns`` (the column names a model was trained on), a DataFrame block is
    matched by column name, not position: its columns are put in the trained order, and
    a block that lacks some of them raises. Raises a KeyError naming the ``pp`` function
    when a block is missing and a ValueError on NaN / infinite values or a wrong number
    of rows.
    """
    out = {}
    for name in modalities:
        key = modality_key(name)
        if key not in adata.obsm:
            if name in _PRODUCERS:
                raise KeyError(f"{where}: adata.obsm[{key!r}] ({name} features) is missing: run "
                               f"`{_PRODUCERS[name]}` first.")
            raise KeyError(f"{where}: adata.obsm[{key!r}] is missing: a modality is one of {list(_PRODUCERS)} or an "
                           f"obsm key of the section (it has {list(adata.obsm)}).")
        block = adata.obsm[key]
        trained = None if columns is None else columns.get(name)
        if isinstance(block, pd.DataFrame):
            if trained is not None:
                block = _match_columns(block, trained, name, key, where)
            block = block.to_numpy()
        elif sp.issparse(block):
            block = block.toarray()
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[0] != adata.n_obs:
            raise ValueError(f"{where}: adata.obsm[{key!r}] must be (n_obs, d), got {x.shape}")
        bad = ~np.isfinite(x)
        if bad.any():
            rows = int(bad.any(1).sum())
            raise ValueError(
                f"{where}: adata.obsm[{key!r}] has NaN or infinite values in {rows} spots; "
                "impute or drop those spots (e.g. spots without nuclei) before fitting/predicting."
            )
        out[name] = x
    return out


def feature_columns(adata: AnnData, modalities: Sequence[str]) -> dict[str, list[str] | None]:
    """Column names of each modality block (``None`` for a plain array block)."""
    out = {}
    for name in modalities:
        block = adata.obsm.get(modality_key(name))
        out[name] = [str(c) for c in block.columns] if isinstance(block, pd.DataFrame) else None
    return out


def _match_columns(block: pd.DataFrame, trained: list[str], name: str, key: str, where: str) -> pd.DataFrame:
    names = [str(c) for c in block.columns]
    if names == trained:
        return block
    missing = [c for c in trained if c not in names]
    if missing or len(set(names)) != len(names):
        extra = [c for c in names if c not in trained]
        raise ValueError(
            f"{where}: the {name} features (adata.obsm[{key!r}]) lack columns the model was trained on: "
            f"missing {missing[:5]}{' …' if len(missing) > 5 else ''}, unexpected {extra[:5]}; compute the "
            "features with the same sthisto version and settings as the training sections."
        )
    logger.info("%s: adata.obsm[%r] columns are in another order than in training; matched by name",
                where, key)
    return block[[block.columns[names.index(c)] for c in trained]]


def check_dims(features: dict[str, np.ndarray], dims: dict[str, int], where: str) -> None:
    """Raise a ValueError when a modality's width differs from the expected one."""
    for name, d in dims.items():
        got = features[name].shape[1]
        if got != d:
            raise ValueError(
                f"{where}: {name} features ({modality_key(name)!r}) have {got} columns, but the "
                f"model/first section has {d}; compute the features with the same settings for "
                "every section."
            )


def spot_graph(adata: AnnData, key: str = K.SPATIAL_NEIGHBORS) -> sp.csr_matrix:
    """Return the symmetric 0/1 spot graph ``obsp['{key}_connectivities']`` without self loops."""
    ckey = K.connectivities_key(key)
    if ckey not in adata.obsp:
        raise KeyError(f"adata.obsp[{ckey!r}] is missing: run `sthisto.pp.spatial_graph` first (or pass "
                       "the key_added you gave it as neighbors_key=).")
    a = sp.csr_matrix(adata.obsp[ckey], dtype=np.float32)
    a = a.maximum(a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    a.data[:] = 1.0
    return a


def edge_index(a: sp.spmatrix) -> np.ndarray:
    """(2, E) int64 edge list of a sparse adjacency."""
    coo = sp.coo_matrix(a)
    return np.vstack([coo.row, coo.col]).astype(np.int64)


def padded_rings(a: sp.spmatrix, max_hop: int = MAX_HOP) -> np.ndarray:
    """(N, max_hop, R) int64 hop-ring members (exact hop distance 1..max_hop), padded with -1."""
    from sthisto.pp import hop_rings

    rings = [sp.csr_matrix(r) for r in hop_rings(a, max_hop=max_hop)]
    n = a.shape[0]
    width = max(1, max(int(np.diff(r.indptr).max(initial=0)) for r in rings))
    out = np.full((n, max_hop, width), -1, dtype=np.int64)
    for k, r in enumerate(rings):
        r.sort_indices()
        counts = np.diff(r.indptr)
        rows = np.repeat(np.arange(n), counts)
        pos = np.arange(r.nnz) - np.repeat(r.indptr[:-1], counts)
        out[rows, k, pos] = r.indices
    return out


def log_targets(adata: AnnData, genes: Sequence[str], layer: str | None = None) -> np.ndarray:
    """``log1p(normalize_total(1e4))`` of ``layer``/X (library size over all genes), for ``genes``.

    The one shared transform of :mod:`sthisto._expression`, so that training targets and
    :func:`sthisto.tl.evaluate` see the same values.
    """
    from sthisto._expression import log_normalized

    return log_normalized(adata, list(genes), layer, dtype=np.float32)


def check_genes(adata: AnnData, genes: Sequence[str], where: str) -> None:
    """Raise a KeyError listing genes absent from ``adata.var_names``."""
    missing = pd.Index(genes).difference(adata.var_names)
    if len(missing):
        raise KeyError(
            f"{where} lacks {len(missing)} of the model genes (e.g. {missing[:5].tolist()}); "
            "pass genes= present in every training section."
        )


def default_genes(adatas: Sequence[AnnData], n_top_genes: int, layer: str | None = None) -> list[str]:
    """Top ``n_top_genes`` highly variable genes of the training sections (pooled log-normalised)."""
    from sthisto._validate import integer
    from sthisto.tl._select_genes import select_genes

    n_top_genes = integer(n_top_genes, "n_top_genes", minimum=1, fix="or pass genes=")
    return select_genes(list(adatas), flavor="hvg", n_top=n_top_genes, layer=layer)


def gene_prior(
    adatas: Sequence[AnnData], genes: Sequence[str], *, go_key: str = K.GO, embedding_key: str = K.GENE2VEC
) -> tuple[np.ndarray, np.ndarray, int]:
    """Gene embeddings (C, e) and GO gene-graph edges (2, E) restricted to ``genes``.

    The GO graph belongs to the gene set, not to a section: it is read from the first
    section holding both ``varp['{go_key}_connectivities']`` and ``varm[embedding_key]``,
    so it is computed once, on any one training section. Returns ``(embeddings,
    edge_index, section_index)``.
    """
    gkey = K.connectivities_key(go_key)
    for i, a in enumerate(adatas):  # noqa: B007 - i is used after the loop
        if gkey in a.varp and embedding_key in a.varm:
            break
    else:
        has_graph = any(gkey in a.varp for a in adatas)
        producer = "sthisto.pp.gene_embeddings" if has_graph else "sthisto.pp.gene_ontology_graph"
        what = f"varm[{embedding_key!r}]" if has_graph else f"varp[{gkey!r}]"
        raise KeyError(
            f"no training section has adata.{what}: run `{producer}` on one training section "
            "first (both the GO graph and gene embeddings are needed), or pass use_go=False."
        )
    a = adatas[i]
    idx = a.var_names.get_indexer(list(genes))
    if (idx < 0).any():
        missing = [g for g, j in zip(genes, idx, strict=True) if j < 0][:5]
        raise KeyError(
            f"{int((idx < 0).sum())} genes are absent from the GO gene graph of training section {i} "
            f"(e.g. {missing}); run `sthisto.pp.gene_ontology_graph` on a section holding all "
            "model genes, restrict genes=, or pass use_go=False."
        )
    emb = a.varm[embedding_key]
    emb = emb.to_numpy() if isinstance(emb, pd.DataFrame) else np.asarray(emb)
    emb = np.asarray(emb[idx], dtype=np.float32)
    if not np.isfinite(emb).all():
        raise ValueError(f"adata.varm[{embedding_key!r}] holds NaN or infinite values")
    g = sp.csr_matrix(a.varp[gkey])[idx][:, idx]
    g = ((g + g.T) != 0).astype(np.float32)
    return emb, edge_index(g), i
