"""Exact GO gene similarity S = Ĝ B Ĝᵀ (Eqs. 10–12), in row blocks with a streaming top-k.

Term level: ``b_mk = |anc(m) ∩ anc(k)| / max(depth(m), depth(k))`` for two non-root terms of
one domain, else 0. With ``M`` the (terms × terms) ancestor matrix, ``B = (M Mᵀ) ⊘ maxdepth``
is formed per domain only over the terms that the genes use (dense ``K_d × K_d``; for all
human genes the largest, biological process, is 12k × 12k). Never a dense matrix over all
terms, and never a dense genes × genes matrix unless asked for (``dense_max``).

Gene level (``norm="paper"``): ``S = Ĝ B Ĝᵀ`` with ``Ĝ`` the gene × term incidence divided by
the gene's number of terms ``n_i`` (roots count in ``n_i`` and score 0). For each block of
genes, ``S[blk] = (Ĝ[blk] B) Ĝᵀ`` is computed exactly in float64 and reduced at once to the
top-k similarities per gene, the threshold θ_i and the graph edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._obo import Ontology

RELATIONS = ("is_a", "part_of")
EDGE_EPS = 1e-9


@dataclass
class GoSimilarity:
    """Result of :func:`gene_similarity`."""

    similarity: np.ndarray | sp.csr_matrix  # dense (G, G) or sparse top-k per row
    connectivities: sp.csr_matrix  # (G, G) float32 0/1, symmetric, self-loops
    threshold: np.ndarray  # (G,) θ_i (paper) or the global threshold (positive_pairs)
    topk_index: np.ndarray  # (G, k) int
    topk_value: np.ndarray  # (G, k) float64


def parent_matrix(ont: Ontology, relations=("is_a",)) -> sp.csr_matrix:
    """Child → parent incidence (T × T) over ``relations`` (``part_of`` only within a domain)."""
    rel = tuple(relations)
    unknown = set(rel) - set(RELATIONS)
    if unknown or "is_a" not in rel:
        raise ValueError(f"relations must contain 'is_a' and may add 'part_of'; got {rel}")
    child, parent = [ont.is_a[0]], [ont.is_a[1]]
    if "part_of" in rel and ont.part_of.size:
        c, p = ont.part_of
        same = ont.domain[c] == ont.domain[p]
        child.append(c[same])
        parent.append(p[same])
    child, parent = np.concatenate(child), np.concatenate(parent)
    n = ont.n_terms
    mat = sp.csr_matrix((np.ones(child.size, dtype=np.float64), (child, parent)), shape=(n, n))
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return mat


def ancestor_matrix(ont: Ontology, relations=("is_a",), *, include_self: bool = False) -> sp.csr_matrix:
    """Transitive closure of :func:`parent_matrix` (0/1, T × T): row m marks anc(m)."""
    up = parent_matrix(ont, relations)
    closure = up.copy()
    for _ in range(64):  # path doubling: converges in log2(longest path) steps
        nxt = closure + closure @ closure
        nxt.data[:] = 1.0
        if nxt.nnz == closure.nnz:
            break
        closure = nxt
    else:  # pragma: no cover - 2**64 steps cannot be needed
        raise ValueError("ancestor closure did not converge; is the ontology a DAG?")
    if closure.diagonal().any():
        raise ValueError("the ontology has a cycle (a term is its own ancestor); not a valid DAG")
    if include_self:
        closure = (closure + sp.identity(ont.n_terms, format="csr")).tocsr()
    closure.sort_indices()
    return closure


def term_block(anc: sp.csr_matrix, depth: np.ndarray, terms: np.ndarray, *, chunk: int = 2048) -> np.ndarray:
    """Dense ``B`` over ``terms`` (non-root terms of one domain): shared ancestors / max depth."""
    m = anc[terms]
    mt = m.T.tocsr()
    d = depth[terms].astype(np.float64)
    k = len(terms)
    out = np.zeros((k, k), dtype=np.float64)  # toarray(out=) adds into the buffer
    for s in range(0, k, chunk):
        e = min(k, s + chunk)
        blk = out[s:e]
        (m[s:e] @ mt).toarray(out=blk)
        blk /= np.maximum.outer(d[s:e], d)
    return out


def _domains(ont: Ontology, used: np.ndarray) -> list[np.ndarray]:
    """Non-root used terms grouped by domain."""
    nonroot = used[ont.depth[used] > 0]
    return [nonroot[ont.domain[nonroot] == d] for d in np.unique(ont.domain[nonroot])]


def gene_similarity(
    incidence: sp.csr_matrix,
    ont: Ontology,
    *,
    relations=("is_a",),
    include_self: bool = False,
    norm: str = "paper",
    top_k: int = 10,
    threshold: float = 0.75,
    dense_max: int = 5000,
    block_size: int | None = None,
    anc: sp.csr_matrix | None = None,
    progress=None,
) -> GoSimilarity:
    """Exact gene × gene GO similarity, top-k thresholds and the gene graph.

    Parameters
    ----------
    incidence
        (G × T) 0/1 gene × term matrix over ``ont``'s term indices (obsolete terms removed).
    norm
        ``"paper"``: S_ij = Σ_mk b_mk / (n_i n_j); ``"positive_pairs"``: Σ_mk b_mk divided by
        the number of term pairs with b_mk > 0 (the authors' code), graph by ``S > threshold``.
    dense_max
        Return a dense similarity for at most this many genes, else a sparse matrix holding
        the top-k entries per row.
    """
    if norm not in ("paper", "positive_pairs"):
        raise ValueError(f"norm must be 'paper' or 'positive_pairs', got {norm!r}")
    inc = sp.csr_matrix(incidence, dtype=np.float64)
    inc.sum_duplicates()
    inc.data[:] = 1.0
    n_genes = inc.shape[0]
    if n_genes < 2:
        raise ValueError(f"the GO gene graph needs at least 2 genes, got {n_genes}")
    k = int(min(top_k, n_genes - 1))
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if anc is None:
        anc = ancestor_matrix(ont, relations, include_self=include_self)
    n_terms = np.asarray(inc.sum(axis=1)).ravel()
    if norm == "paper":
        weights = sp.diags(1.0 / np.maximum(n_terms, 1.0)) @ inc
    else:
        weights = inc
    weights = sp.csr_matrix(weights)
    used = np.unique(inc.indices)
    groups = []
    for terms in _domains(ont, used):
        b = term_block(anc, ont.depth, terms)
        g = weights[:, terms].tocsr()
        z = (b > 0).astype(np.float64) if norm == "positive_pairs" else None
        gi = inc[:, terms].tocsr() if norm == "positive_pairs" else None
        groups.append((b, g, z, gi))

    from ._kernels import topk_kernel

    if block_size is None:
        block_size = int(max(32, min(n_genes, (1 << 23) // max(n_genes, 1))))
    dense = n_genes <= dense_max
    full = np.zeros((n_genes, n_genes)) if dense else None
    top_i = np.empty((n_genes, k), dtype=np.int64)
    top_v = np.empty((n_genes, k), dtype=np.float64)
    theta = np.empty(n_genes, dtype=np.float64)
    rows, cols = [], []
    starts = range(0, n_genes, block_size)
    if progress is not None:
        starts = progress(starts, desc="GO similarity", total=len(starts))
    for s in starts:
        e = min(n_genes, s + block_size)
        acc = np.zeros((n_genes, e - s))  # S[blk]ᵀ, accumulated contiguously per domain
        pos = np.zeros((n_genes, e - s)) if norm == "positive_pairs" else None
        for b, g, z, gi in groups:
            y = np.ascontiguousarray((g[s:e] @ b).T)  # (K_d, blk) = B Ĝ[blk]ᵀ (B symmetric)
            acc += g @ y
            if pos is not None:
                y0 = np.ascontiguousarray((gi[s:e] @ z).T)
                pos += gi @ y0
        blk = np.ascontiguousarray(acc.T)
        if pos is not None:
            pos = np.ascontiguousarray(pos.T)
        if pos is not None:
            np.divide(blk, pos, out=blk, where=pos > 0)
            blk[pos == 0] = 0.0
        if dense:
            full[s:e] = blk
        idx, val = top_i[s:e], top_v[s:e]
        topk_kernel(blk, s, k, idx, val)
        if norm == "paper":
            th = val.mean(axis=1)
            theta[s:e] = th
            hit = val > th[:, None] + EDGE_EPS
            r, c = np.nonzero(hit)
            rows.append(r + s)
            cols.append(idx[r, c])
        else:
            theta[s:e] = threshold
            local = np.arange(e - s)
            blk[local, np.arange(s, e)] = -np.inf
            r, c = np.nonzero(blk > threshold)
            rows.append(r + s)
            cols.append(c)
    r = np.concatenate(rows + [np.arange(n_genes)])
    c = np.concatenate(cols + [np.arange(n_genes)])
    adj = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=(n_genes, n_genes))
    adj = adj + adj.T
    adj.data[:] = 1.0
    adj = sp.csr_matrix(adj, dtype=np.float32)
    adj.sort_indices()
    if dense:
        similarity = full
    else:
        rr = np.repeat(np.arange(n_genes), k)
        similarity = sp.csr_matrix((top_v.ravel(), (rr, top_i.ravel())), shape=(n_genes, n_genes))
        similarity.eliminate_zeros()
    return GoSimilarity(similarity=similarity, connectivities=adj, threshold=theta, topk_index=top_i,
                        topk_value=top_v)
