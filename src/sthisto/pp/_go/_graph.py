"""``sthisto.pp.gene_ontology_graph``: the GO gene graph of M2TGLGO (Eqs. 10–12) on AnnData."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._logging import logger
from sthisto._settings import progress
from sthisto._utils import Outputs, copy_or_self
from sthisto._validate import (
    existing_file,
    flag,
    integer,
    key_name,
    name_list,
    number,
    one_of,
    unique_var_names,
)
from sthisto.datasets import bundled_gene_ontology

from ._gaf import Annotations, read_gaf
from ._obo import DOMAINS, Ontology, read_obo
from ._similarity import gene_similarity

DENSE_MAX = 5000  # genes; above this the similarity is stored as a sparse top-k matrix


@cache
def bundled() -> tuple[Ontology, Annotations]:
    """Load the bundled GO 2019-01-29 + GOA human snapshot (GO Consortium, CC BY 4.0)."""
    with bundled_gene_ontology().open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        return Ontology.from_arrays(z), Annotations.from_arrays(z)


def match_genes(names: Sequence[str], ann: Annotations) -> tuple[np.ndarray, dict[str, str]]:
    """Index into ``ann.gene_names`` per name (-1 when unmatched) and the synonym matches used.

    A name matches a symbol directly, else a GAF synonym that points at exactly one gene
    whose own symbol is not among ``names``.
    """
    pos = pd.Index(ann.gene_names)
    idx = pos.get_indexer(pd.Index(list(names)))
    via_syn: dict[str, str] = {}
    missing = np.flatnonzero(idx < 0)
    if missing.size and ann.syn_names.size:
        syn = pd.DataFrame({"s": ann.syn_names, "g": ann.syn_gene})
        syn = syn[syn["s"].isin(np.asarray(names, dtype=object)[missing])]
        unique = syn.groupby("s")["g"].agg(lambda x: x.iloc[0] if x.nunique() == 1 else -1)
        taken = set(idx[idx >= 0].tolist())
        for i in missing:
            g = int(unique.get(names[i], -1))
            if g >= 0 and g not in taken:
                idx[i] = g
                taken.add(g)
                via_syn[str(names[i])] = str(ann.gene_names[g])
    return idx, via_syn


def incidence_matrix(
    gene_index: np.ndarray, ann: Annotations, ont: Ontology, evidence_exclude: Sequence[str] = ()
) -> tuple[sp.csr_matrix, dict]:
    """(n_vars × n_terms) 0/1 matrix of each matched gene's terms, and drop statistics."""
    keep = np.ones(ann.gene.size, dtype=bool)
    if evidence_exclude:
        bad = np.isin(ann.evidence_names, list(evidence_exclude))
        keep &= ~bad[ann.evidence]
    lookup = ont.index()
    tmap = np.array([lookup.get(t, -1) for t in ann.term_names.tolist()], dtype=np.int64)
    term = tmap[ann.term]
    unknown = keep & (term < 0)
    keep &= term >= 0
    obsolete = keep & ont.obsolete[np.maximum(term, 0)]
    keep &= ~obsolete
    # annotation rows per var: map gene ids → var positions (a gene may match one var only)
    var_of_gene = np.full(ann.gene_names.size, -1, dtype=np.int64)
    ok = gene_index >= 0
    var_of_gene[gene_index[ok]] = np.flatnonzero(ok)
    rows = var_of_gene[ann.gene]
    keep &= rows >= 0
    inc = sp.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], term[keep])), shape=(gene_index.size, ont.n_terms)
    )
    inc.sum_duplicates()
    inc.data[:] = 1.0
    stats = {"n_unknown_term_annotations": int(unknown.sum()), "n_obsolete_term_annotations": int(obsolete.sum())}
    return inc, stats


def _load(ontology, annotations) -> tuple[Ontology, Annotations]:
    if ontology is None or annotations is None:
        ont_b, ann_b = bundled()
    ont = ont_b if ontology is None else (ontology if isinstance(ontology, Ontology) else read_obo(ontology))
    ann = ann_b if annotations is None else (
        annotations if isinstance(annotations, Annotations) else read_gaf(annotations))
    return ont, ann


@doc_params
def gene_ontology_graph(
    adata: AnnData,
    *,
    ontology: str | os.PathLike | None = None,
    annotations: str | os.PathLike | None = None,
    relations: Sequence[str] = ("is_a",),
    include_self: bool = False,
    evidence_exclude: Sequence[str] = (),
    norm: str = "paper",
    top_k: int = 10,
    threshold: float = 0.75,
    key_added: str = K.GO,
    copy: bool = False,
) -> AnnData | None:
    """Gene Ontology similarity and gene graph over ``var_names`` (M2TGLGO Eqs. 10–12).

    ``S_ij = (1 / (n_i n_j)) Σ_m Σ_k b_mk`` over the terms m of gene i and k of gene j, with
    ``b_mk = |anc(m) ∩ anc(k)| / max(depth(m), depth(k))`` for two terms of one domain
    (BP/MF/CC), else 0. Ancestors follow ``is_a`` (term itself excluded); depth is the longest
    ``is_a`` path from the root (root = 0) and a pair involving a root scores 0. The graph:
    θ_i = mean of gene i's ``top_k`` largest similarities to other genes,
    ``A_ij = 1`` if ``S_ij > θ_i + 1e-9``, symmetrised (OR), self-loops added.
    Computed exactly in float64 as ``S = Ĝ B Ĝᵀ`` in row blocks (see ``docs/gene_ontology.md``).

    Parameters
    ----------
    {adata}
    ontology
        OBO file (plain or .gz), parsed with pronto and cached as arrays in
        ``sthisto.settings.datasetdir``; ``None`` uses the bundled GO 2019-01-29 snapshot.
        :func:`sthisto.datasets.gene_ontology` downloads other releases.
    annotations
        GAF 2.x file (plain or .gz) or NCBI ``gene2go`` file (``var_names`` must then be
        NCBI Gene IDs); ``None`` uses the bundled GOA human annotations. ``NOT``
        qualifiers are dropped, alt_ids mapped, obsolete terms dropped, duplicates removed.
        Genes are matched on ``var_names``, then on GAF synonyms.
    relations
        Relations followed for ancestors: ``("is_a",)`` or ``("is_a", "part_of")``
        (``part_of`` within a domain). Depth always follows ``is_a``.
    include_self
        Count a term among its own ancestors.
    evidence_exclude
        Evidence codes to drop, e.g. ``("IEA",)``.
    norm
        ``"paper"`` (above) or ``"positive_pairs"``: Σ b_mk divided by the number of term
        pairs with b_mk > 0, and ``A_ij = 1`` if ``S_ij > threshold`` (the authors' code).
    top_k
        Similarities averaged into θ_i (``min(top_k, n_vars - 1)``).
    threshold
        Global edge threshold of ``norm="positive_pairs"``.
    key_added
        Prefix of the keys written.
    {copy}

    Returns
    -------
    {returns_copy} Writes

    - ``adata.varp['{{key_added}}_similarity']``: float64 gene × gene similarity; dense up
      to 5000 genes, above that a sparse matrix of the ``top_k`` largest off-diagonal
      entries per row.
    - ``adata.varp['{{key_added}}_connectivities']``: sparse float32 0/1 graph, symmetric,
      with self-loops. Unannotated genes have only their self-loop.
    - ``adata.var['{{key_added}}_n_terms']``: number of GO terms of each gene (0 = unannotated).
    - ``adata.uns['{{key_added}}']``: ``params``, ``connectivities_key``, ``similarity_key``,
      ``n_terms`` per domain, ``n_unannotated``, ``unannotated`` genes, ``synonym_matches``,
      ``threshold`` summary, ontology version.
    """
    adata = copy_or_self(adata, copy)
    key_added = key_name(key_added)
    unique_var_names(adata)
    if adata.n_vars < 2:
        raise ValueError(
            f"the GO gene graph needs at least 2 genes in adata.var_names, got {adata.n_vars}"
        )
    norm = one_of(norm, "norm", ("paper", "positive_pairs"))
    top_k = integer(top_k, "top_k", minimum=1)
    threshold = number(threshold, "threshold")
    relations = name_list(relations, "relations")  # "is_a" is one relation, not four letters
    evidence_exclude = name_list(evidence_exclude, "evidence_exclude")
    include_self = flag(include_self, "include_self")
    for value, what in ((ontology, "ontology"), (annotations, "annotations")):
        if value is not None and not isinstance(value, Ontology | Annotations):
            existing_file(value, f"{what} file ({what}=)")
    ont, ann = _load(ontology, annotations)
    names = adata.var_names.astype(str).tolist()
    gidx, via_syn = match_genes(names, ann)
    if (gidx < 0).all():
        raise ValueError(
            f"none of the {adata.n_vars} var_names (e.g. {names[:3]}) is a gene symbol of the "
            f"annotation file ({ann.source or 'bundled GOA human'}, e.g. {ann.gene_names[:3].tolist()}); "
            "use gene symbols as var_names (e.g. adata.var_names = adata.var['gene_symbols'])."
        )
    inc, stats = incidence_matrix(gidx, ann, ont, evidence_exclude)
    n_terms = np.asarray(inc.sum(axis=1)).ravel().astype(np.int64)
    unannotated = [n for n, c in zip(names, n_terms, strict=True) if c == 0]
    if len(unannotated) == adata.n_vars:
        raise ValueError(
            "no gene keeps a GO annotation after filtering (evidence_exclude, obsolete or unknown "
            "terms); check that the ontology and annotation files belong together."
        )
    if unannotated:
        logger.warning(
            "GO: %d of %d genes have no GO annotation (zero similarity rows, only a self-loop), e.g. %s",
            len(unannotated), adata.n_vars, unannotated[:5],
        )
    res = gene_similarity(
        inc, ont, relations=relations, include_self=include_self, norm=norm, top_k=top_k,
        threshold=threshold, dense_max=DENSE_MAX, progress=progress if adata.n_vars > 4 * DENSE_MAX else None,
    )
    used = np.unique(inc.indices)
    per_domain = {d: int((ont.domain[used] == i).sum()) for i, d in enumerate(DOMAINS)}
    info = {
        "connectivities_key": K.connectivities_key(key_added),
        "similarity_key": K.similarity_key(key_added),
        "params": {
            "ontology": "bundled GO 2019-01-29" if ontology is None else str(ontology),
            "annotations": "bundled GOA human 2019-01-29" if annotations is None else str(annotations),
            "relations": list(relations), "include_self": include_self,
            "evidence_exclude": list(evidence_exclude), "norm": norm, "top_k": top_k,
            "threshold": threshold,
        },
        "ontology_version": ont.version,
        "n_terms": per_domain,
        "n_annotated": int(adata.n_vars - len(unannotated)),
        "n_unannotated": len(unannotated),
        "unannotated": unannotated,
        "synonym_matches": via_syn,
        "n_edges": int((res.connectivities.nnz - adata.n_vars) // 2),
        "similarity_dense": bool(adata.n_vars <= DENSE_MAX),
        **stats,
    }
    out = Outputs()
    out.add("varp", K.similarity_key(key_added), res.similarity)
    out.add("varp", K.connectivities_key(key_added), res.connectivities)
    out.add("var", f"{key_added}_n_terms", n_terms)
    out.add("uns", key_added, info)
    out.write(adata)
    return adata if copy else None
