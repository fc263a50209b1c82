"""Slow, obviously-correct reference of the GO gene similarity (loops, BFS), and file writers."""

from __future__ import annotations

from collections import deque

import numpy as np

NS = {"P": "biological_process", "F": "molecular_function", "C": "cellular_component"}


def write_obo(path, terms):
    """terms: dict id -> {"ns", "is_a": [...], "part_of": [...], "alt": [...], "obsolete": bool}."""
    out = ["format-version: 1.2", "data-version: test", "ontology: go", ""]
    for tid, t in terms.items():
        out += ["[Term]", f"id: {tid}", f"name: term {tid}", f"namespace: {t['ns']}"]
        out += [f"alt_id: {a}" for a in t.get("alt", [])]
        if t.get("obsolete"):
            out.append("is_obsolete: true")
        out += [f"is_a: {p}" for p in t.get("is_a", [])]
        out += [f"relationship: part_of {p}" for p in t.get("part_of", [])]
        out.append("")
    path.write_text("\n".join(out))
    return path


def write_gaf(path, rows):
    """rows: (symbol, go_id, evidence, qualifier, synonyms)."""
    lines = ["!gaf-version: 2.1"]
    for sym, go, ev, qual, syn in rows:
        cols = ["UniProtKB", f"ID_{sym}", sym, qual, go, "PMID:1", ev, "", "P", "name", syn, "protein",
                "taxon:9606", "20190101", "TEST", "", ""]
        lines.append("\t".join(cols))
    path.write_text("\n".join(lines) + "\n")
    return path


def ancestors(terms, tid, relations, include_self):
    """BFS over the parent links (part_of only within the term's namespace)."""
    seen, queue = set(), deque([tid])
    while queue:
        t = queue.popleft()
        parents = list(terms[t].get("is_a", []))
        if "part_of" in relations:
            parents += [p for p in terms[t].get("part_of", []) if terms[p]["ns"] == terms[t]["ns"]]
        for p in parents:
            if p not in seen:
                seen.add(p)
                queue.append(p)
    if include_self:
        seen.add(tid)
    return seen


def depth(terms, tid, memo):
    """Longest is_a path from a root (recursion)."""
    if tid not in memo:
        ps = terms[tid].get("is_a", [])
        memo[tid] = 0 if not ps else 1 + max(depth(terms, p, memo) for p in ps)
    return memo[tid]


def reference(terms, gene_terms, *, relations=("is_a",), include_self=False, norm="paper"):
    """S (dense) by a loop over gene pairs summing the term-pair block b[terms_i, terms_j].

    b_mk is built from BFS ancestor sets: the shared-ancestor count is the dot product of
    the two terms' ancestor indicator vectors; pairs across namespaces or with a root are 0.
    """
    memo = {}
    used = sorted({t for ts in gene_terms for t in ts})
    pos = {t: i for i, t in enumerate(used)}
    anc = [ancestors(terms, t, relations, include_self) for t in used]
    cols = {a: i for i, a in enumerate(sorted(set().union(*anc)))} if used else {}
    ind = np.zeros((len(used), max(len(cols), 1)))
    for i, a in enumerate(anc):
        ind[i, [cols[x] for x in a]] = 1.0
    dep = np.array([depth(terms, t, memo) for t in used], dtype=float)
    ns = np.array([terms[t]["ns"] for t in used])
    shared = ind @ ind.T
    valid = (ns[:, None] == ns[None, :]) & (dep[:, None] > 0) & (dep[None, :] > 0)
    b = np.where(valid, shared / np.maximum(np.maximum.outer(dep, dep), 1.0), 0.0)
    n = len(gene_terms)
    s = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ti, tj = [pos[t] for t in gene_terms[i]], [pos[t] for t in gene_terms[j]]
            if not ti or not tj:
                continue
            block = b[np.ix_(ti, tj)]
            if norm == "paper":
                s[i, j] = block.sum() / (len(ti) * len(tj))
            else:
                npos = int((block > 0).sum())
                s[i, j] = block.sum() / npos if npos else 0.0
    return s


def reference_graph(s, top_k=10, *, norm="paper", threshold=0.75):
    """Threshold graph by loops: θ_i = mean of top-k off-diagonal values, OR-symmetrised, self-loops."""
    n = s.shape[0]
    a = np.zeros((n, n), dtype=bool)
    k = min(top_k, n - 1)
    for i in range(n):
        others = sorted((s[i, j] for j in range(n) if j != i), reverse=True)
        theta = sum(others[:k]) / k
        for j in range(n):
            if j == i:
                continue
            if (norm == "paper" and s[i, j] > theta + 1e-9) or (norm != "paper" and s[i, j] > threshold):
                a[i, j] = a[j, i] = True
    a[np.arange(n), np.arange(n)] = True
    return a
