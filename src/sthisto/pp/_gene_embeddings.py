"""``sthisto.pp.gene_embeddings``: Gene2Vec vectors for the gene nodes of M2TGLGO."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._expression import log_normalized
from sthisto._logging import logger
from sthisto._settings import settings
from sthisto._utils import Outputs, copy_or_self
from sthisto._validate import (
    affordable,
    integer,
    key_name,
    number,
    one_of,
    raw_counts,
    unique_var_names,
)

from ._word2vec import read_gene_vectors

METHODS = ("gene2vec",)


def _stable_hash(text: str) -> int:
    """Process-independent hash for gensim's vector seeding (Python's ``hash`` is salted)."""
    return zlib.crc32(str(text).encode("utf-8"))


def coexpressed_pairs(
    a: AnnData, *, layer: str | None = None, min_corr: float = 0.5, n_neighbors: int = 3,
    max_pairs: int = 50_000, block: int = 2048,
) -> list[tuple[str, str]]:
    """Gene pairs of one section: Pearson r ≥ ``min_corr`` on log-normalised expression
    (strongest ``max_pairs``), plus each gene's ``n_neighbors`` most correlated partners.
    """  # noqa: D205
    x = log_normalized(a, layer=layer)
    sd = x.std(axis=0)
    keep = np.flatnonzero(sd > 0)
    if keep.size < 2 or x.shape[0] < 3:
        return []
    z = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    n, g = z.shape
    names = np.asarray(a.var_names)[keep]
    ii, jj, rr = [], [], []
    nn = int(min(n_neighbors, g - 1))
    for s in range(0, g, block):
        e = min(g, s + block)
        c = z[:, s:e].T @ z / n  # (blk, g) Pearson r
        c[np.arange(e - s), np.arange(s, e)] = -np.inf
        r, col = np.nonzero(c >= min_corr)
        ii.append(r + s)
        jj.append(col)
        rr.append(c[r, col])
        if nn > 0:
            top = np.argpartition(-c, nn - 1, axis=1)[:, :nn]
            rows = np.repeat(np.arange(e - s), nn)
            ii.append(rows + s)
            jj.append(top.ravel())
            rr.append(np.full(rows.size, np.inf))  # always kept
    i, j, r = np.concatenate(ii), np.concatenate(jj), np.concatenate(rr)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((hi, lo, -r))
    lo, hi, r = lo[order], hi[order], r[order]
    _, first = np.unique(lo.astype(np.int64) * g + hi, return_index=True)
    first = np.sort(first)
    forced = first[np.isinf(r[first])]
    rest = first[~np.isinf(r[first])][: max(0, int(max_pairs))]
    sel = np.concatenate([forced, rest])
    return [(str(names[p]), str(names[q])) for p, q in zip(lo[sel], hi[sel], strict=True)]


@doc_params
def gene_embeddings(
    adata: AnnData,
    *,
    method: str = "gene2vec",
    path: str | os.PathLike | None = None,
    adatas: Sequence[AnnData] | None = None,
    layer: str | None = None,
    dim: int = 200,
    window: int = 1,
    epochs: int = 10,
    negative: int = 5,
    min_corr: float = 0.5,
    n_neighbors: int = 3,
    max_pairs: int = 50_000,
    seed: int | None = None,
    key_added: str = K.GENE2VEC,
    copy: bool = False,
) -> AnnData | None:
    """Gene embeddings (Gene2Vec) for every gene in ``var_names``.

    With ``path``, pretrained vectors are read from a word2vec file, text (with or without
    the ``"<count> <dim>"`` header, e.g. the published 200-d Gene2Vec file) or binary; the
    format is read from the content, and a malformed line raises an error naming the line.
    Vectors with NaN or infinite values are left out with a warning and their genes count
    as missing. Otherwise Gene2Vec is trained
    as its authors did: gensim Word2Vec skip-gram on "sentences" that are co-expressed gene
    pairs, here mined from the sections ``adatas`` (log-normalised expression; pairs with
    Pearson r ≥ ``min_corr`` plus each gene's ``n_neighbors`` best partners), with one
    worker and a fixed seed so the vectors are reproducible. Genes without a vector get
    the mean vector and are flagged.

    Parameters
    ----------
    {adata}
    method
        ``"gene2vec"``.
    path
        Word2vec text/binary file of pretrained gene vectors; ``None`` trains on ``adatas``.
    adatas
        Sections to mine co-expressed pairs from (counts in ``X`` or ``layer``);
        ``None`` uses ``adata``.
    layer
        Layer of counts instead of ``X``.
    dim
        Vector size (200 as in Gene2Vec and M2TGLGO).
    window
        Skip-gram window (1: a pair is one context).
    epochs
        Training epochs.
    negative
        Negative samples per positive pair.
    min_corr
        Pearson correlation threshold for a co-expressed pair.
    n_neighbors
        Most correlated partners added per gene regardless of ``min_corr``.
    max_pairs
        Cap on thresholded pairs per section (strongest first).
    {seed}
    key_added
        Key in ``adata.varm``.
    {copy}

    Returns
    -------
    {returns_copy} Writes

    - ``adata.varm['{{key_added}}']``: float32 (n_vars × dim) gene vectors.
    - ``adata.var['{{key_added}}_missing']``: True where the gene had no vector (mean vector used).
    - ``adata.uns['{{key_added}}']``: ``params``, ``coverage`` (fraction of genes with a
      finite vector), ``n_missing``, ``n_nonfinite`` (vectors of the file left out for NaN or
      infinite values; ``path`` only), ``n_pairs`` (training only).
    """
    adata = copy_or_self(adata, copy)
    key_added = key_name(key_added)
    unique_var_names(adata)
    one_of(method, "method", METHODS)
    seed = settings.resolve_seed(seed)
    names = adata.var_names.astype(str).tolist()
    info: dict = {}
    if path is not None:
        vectors = read_gene_vectors(path)
        index = {n: i for i, n in enumerate(vectors.names)}
        dim = vectors.dim
        info["n_nonfinite"] = vectors.n_nonfinite
    else:
        dim, window, epochs, negative = (integer(v, k, minimum=1) for k, v in
                                         (("dim", dim), ("window", window), ("epochs", epochs), ("negative", negative)))
        n_neighbors, max_pairs = integer(n_neighbors, "n_neighbors", minimum=0), integer(max_pairs, "max_pairs", minimum=0)
        min_corr = number(min_corr, "min_corr", maximum=1.0)
        affordable(16.0 * adata.n_vars * dim, f"{adata.n_vars} gene vectors of dim={dim}", fix="lower dim (Gene2Vec "
                   "uses 200)")
        sections = [adata] if adatas is None else [adatas] if isinstance(adatas, AnnData) else list(adatas)
        if not sections or not all(isinstance(a, AnnData) for a in sections):
            raise TypeError("adatas must be a non-empty sequence of AnnData sections")
        for i, a in enumerate(sections):
            raw_counts(a, layer, where="adata" if adatas is None else f"adatas[{i}]")
        from gensim.models import Word2Vec

        pairs = []
        for a in sections:
            pairs += coexpressed_pairs(a, layer=layer, min_corr=min_corr, n_neighbors=n_neighbors,
                                       max_pairs=max_pairs)
        if not pairs:
            raise ValueError(
                "no co-expressed gene pairs found (sections with < 3 spots or constant genes); "
                "pass more sections with adatas=, lower min_corr, or give pretrained vectors with path=."
            )
        rng = np.random.default_rng(seed)
        sentences = [list(pairs[i]) for i in rng.permutation(len(pairs))]
        model = Word2Vec(
            sentences, vector_size=dim, window=window, min_count=1, sg=1, negative=negative,
            workers=1, seed=seed, epochs=epochs, hashfxn=_stable_hash, sample=0,
        )
        index = {n: i for i, n in enumerate(model.wv.index_to_key)}
        vectors = model.wv
        info["n_pairs"] = len(pairs)
    have = np.array([n in index for n in names], dtype=bool)
    if not have.any():
        raise ValueError(
            f"no gene of var_names (e.g. {names[:3]}) has a vector; the vectors cover e.g. "
            f"{list(index)[:3]}. Use gene symbols as var_names."
        )
    emb = np.empty((len(names), dim), dtype=np.float32)
    emb[have] = np.asarray(vectors.vectors, dtype=np.float32)[[index[n] for n, h in zip(names, have, strict=True) if h]]
    emb[~have] = emb[have].mean(axis=0)
    coverage = float(have.mean())
    log = logger.warning if coverage < 0.5 else logger.info
    log("gene_embeddings: %d of %d genes have a vector (%.1f%%); the rest get the mean vector",
        int(have.sum()), len(names), 100 * coverage)
    if path is not None:  # record what was used: the file, not unused training settings
        params = {"method": method, "path": Path(path).name, "dim": dim}
    else:
        params = {"method": method, "dim": dim, "window": window, "epochs": epochs,
                  "negative": negative, "min_corr": min_corr, "n_neighbors": n_neighbors,
                  "max_pairs": max_pairs, "seed": int(seed), "layer": layer or "",
                  "n_sections": 1 if adatas is None else len(adatas)}
    info.update({"params": params, "coverage": coverage, "n_missing": int((~have).sum())})
    out = Outputs()
    out.add("varm", key_added, emb)
    out.add("var", f"{key_added}_missing", ~have)
    out.add("uns", key_added, info)
    out.write(adata)
    return adata if copy else None
