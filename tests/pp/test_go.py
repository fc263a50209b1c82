import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

import sthisto as st
from sthisto.pp._go import _graph, _obo
from sthisto.pp._go._similarity import gene_similarity

from ._go_reference import reference, reference_graph, write_gaf, write_obo


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(st.settings, "_datasetdir", tmp_path / "data")


def _mk(names):
    a = AnnData(sp.csr_matrix((2, len(names)), dtype=np.float32))
    a.var_names = list(names)
    return a


# ---------------------------------------------------------------- hand-made 8-term DAG
HAND = {
    "GO:0000001": {"ns": "biological_process"},                                   # R (root)
    "GO:0000002": {"ns": "biological_process", "is_a": ["GO:0000001"]},            # A, depth 1
    "GO:0000003": {"ns": "biological_process", "is_a": ["GO:0000001"], "alt": ["GO:0000099"]},  # B, 1
    "GO:0000004": {"ns": "biological_process", "is_a": ["GO:0000002"], "part_of": ["GO:0000003"]},  # C, 2
    "GO:0000005": {"ns": "biological_process", "is_a": ["GO:0000002", "GO:0000003"]},  # D, 2
    "GO:0000006": {"ns": "biological_process", "is_a": ["GO:0000004", "GO:0000005"]},  # E, 3
    "GO:0000007": {"ns": "molecular_function"},                                   # F (root)
    "GO:0000008": {"ns": "molecular_function", "is_a": ["GO:0000007"]},            # G, 1
    "GO:0000009": {"ns": "biological_process", "obsolete": True},                 # obsolete
}
R, A, B, C, D, E, F, G = (f"GO:000000{i}" for i in range(1, 9))
HAND_GAF = [
    ("G1", C, "IDA", "", "G1"), ("G1", G, "IEA", "", "G1"), ("G1", E, "IDA", "NOT", "G1"),
    ("G1", C, "IMP", "", "G1"),  # duplicate term with another evidence
    ("G2", D, "IDA", "", "G2"), ("G2", E, "IDA", "", "G2"),
    ("G3", E, "IDA", "", "G3"), ("G3", R, "ND", "", "G3"), ("G3", "GO:0000009", "IDA", "", "G3"),
    ("G4", "GO:0000099", "IDA", "", "G4|G4alias"),  # alt_id of B, matched through a synonym
]


@pytest.fixture
def hand_files(tmp_path):
    return write_obo(tmp_path / "hand.obo", HAND), write_gaf(tmp_path / "hand.gaf", HAND_GAF)


def test_known_answer_hand_dag(hand_files):
    obo, gaf = hand_files
    adata = _mk(["G1", "G2", "G3", "G4alias", "G5"])
    st.pp.gene_ontology_graph(adata, ontology=obo, annotations=gaf, top_k=2)
    s = adata.varp["sthisto_go_similarity"]
    # by hand: b(C,D)=|{A,R}|/2=1, b(C,E)=2/3, b(D,E)=3/3=1, b(E,E)=5/3, b(B,C)=1/2, b(B,D)=1/2,
    # b(B,E)=1/3, b(G,G)=1, roots and cross-domain pairs 0; n = (2, 2, 2 [E, R], 1, 0)
    expected = np.array([
        [1 / 2, 5 / 12, 1 / 6, 1 / 4, 0],
        [5 / 12, 31 / 24, 2 / 3, 5 / 12, 0],
        [1 / 6, 2 / 3, 5 / 12, 1 / 6, 0],
        [1 / 4, 5 / 12, 1 / 6, 1, 0],
        [0, 0, 0, 0, 0],
    ])
    np.testing.assert_allclose(s, expected, atol=1e-14, rtol=0)
    # θ = (1/3, 13/24, 5/12, 1/3, 0): edges G1–G2, G2–G3, G4–G2, plus self-loops
    adj = adata.varp["sthisto_go_connectivities"].toarray()
    want = np.eye(5)
    for i, j in [(0, 1), (1, 2), (3, 1)]:
        want[i, j] = want[j, i] = 1
    np.testing.assert_array_equal(adj, want)
    info = adata.uns["sthisto_go"]
    assert info["n_unannotated"] == 1 and info["unannotated"] == ["G5"]
    assert info["synonym_matches"] == {"G4alias": "G4"}
    assert info["n_obsolete_term_annotations"] == 1
    np.testing.assert_array_equal(adata.var["sthisto_go_n_terms"], [2, 2, 2, 1, 0])


def test_known_answer_options(hand_files):
    obo, gaf = hand_files
    adata = _mk(["G1", "G2", "G3", "G4alias", "G5"])
    # part_of C→B: anc(C) = {A, B, R}; b(C,D) = 3/2, b(C,E) = 3/3
    st.pp.gene_ontology_graph(adata, ontology=obo, annotations=gaf, relations=("is_a", "part_of"))
    assert adata.varp["sthisto_go_similarity"][0, 1] == pytest.approx((3 / 2 + 1) / 4, abs=1e-14)
    # include_self: b(E,E) = 6/3, b(D,E) = 4/3 (D, A, B, R), b(D,D) = 4/2
    st.pp.gene_ontology_graph(adata, ontology=obo, annotations=gaf, include_self=True)
    assert adata.varp["sthisto_go_similarity"][1, 1] == pytest.approx((2 + 2 * 4 / 3 + 2) / 4, abs=1e-14)
    # positive pairs: (G1,G2) = (1 + 2/3) / 2, (G2,G3) = (1 + 5/3) / 2; global threshold 0.75
    st.pp.gene_ontology_graph(adata, ontology=obo, annotations=gaf, norm="positive_pairs")
    s = adata.varp["sthisto_go_similarity"]
    assert s[0, 1] == pytest.approx(5 / 6, abs=1e-14)
    assert s[1, 2] == pytest.approx(4 / 3, abs=1e-14)
    adj = adata.varp["sthisto_go_connectivities"].toarray()
    np.testing.assert_array_equal(adj[0], [1, 1, 0, 0, 0])  # 5/6 > 0.75; G1–G3 = 2/3 / 1 ≤ 0.75
    # evidence filter: G1 loses its IEA MF term, so S(G1, G1) = b(C,C) = 1
    st.pp.gene_ontology_graph(adata, ontology=obo, annotations=gaf, evidence_exclude=("IEA",))
    assert adata.varp["sthisto_go_similarity"][0, 0] == pytest.approx(1.0, abs=1e-14)


# ---------------------------------------------------------------- random DAGs vs reference
def _random_dag(rng, n_per_domain=25):
    terms, n = {}, 1
    for ns in ("biological_process", "molecular_function", "cellular_component"):
        ids = []
        for i in range(n_per_domain):
            tid = f"GO:{n:07d}"
            n += 1
            t = {"ns": ns}
            if i:
                k = int(rng.integers(1, min(3, i) + 1))
                t["is_a"] = sorted({ids[j] for j in rng.integers(0, i, size=k)})
                if i > 2 and rng.random() < 0.3:
                    t["part_of"] = [ids[int(rng.integers(0, i))]]
            terms[tid] = t
            ids.append(tid)
    return terms


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_equals_reference_random_dags(tmp_path, seed):
    rng = np.random.default_rng(seed)
    terms = _random_dag(rng)
    live = list(terms)
    genes = [f"GENE{i}" for i in range(30)]
    gene_terms = [sorted(set(rng.choice(live, size=int(rng.integers(1, 7))))) if i % 11 else [] for i in range(30)]
    rows = [(g, t, "IDA", "", g) for g, ts in zip(genes, gene_terms, strict=True) for t in ts]
    obo, gaf = write_obo(tmp_path / "r.obo", terms), write_gaf(tmp_path / "r.gaf", rows)
    for kw in ({}, {"relations": ("is_a", "part_of")}, {"include_self": True}, {"norm": "positive_pairs"}):
        adata = _mk(genes)
        st.pp.gene_ontology_graph(adata, ontology=obo, annotations=gaf, **kw)
        ref = reference(terms, gene_terms, **kw)
        np.testing.assert_allclose(adata.varp["sthisto_go_similarity"], ref, atol=1e-12, rtol=0)
        g = reference_graph(ref, 10, norm=kw.get("norm", "paper"))
        np.testing.assert_array_equal(adata.varp["sthisto_go_connectivities"].toarray().astype(bool), g)


def test_blocks_and_sparse_top_k_agree(tmp_path):
    rng = np.random.default_rng(5)
    terms = _random_dag(rng, 40)
    obo = write_obo(tmp_path / "r.obo", terms)
    ont = _obo.read_obo(obo)
    inc = sp.random(60, ont.n_terms, density=0.08, random_state=3, format="csr")
    full = gene_similarity(inc, ont, top_k=5)
    blocked = gene_similarity(inc, ont, top_k=5, block_size=7, dense_max=10)
    assert sp.issparse(blocked.similarity) and not sp.issparse(full.similarity)
    assert (blocked.connectivities != full.connectivities).nnz == 0
    np.testing.assert_allclose(blocked.threshold, full.threshold, atol=1e-14)
    s = full.similarity.copy()
    np.fill_diagonal(s, -np.inf)
    top = -np.sort(-s, axis=1)[:, :5]
    np.testing.assert_allclose(-np.sort(-blocked.similarity.toarray(), axis=1)[:, :5], np.maximum(top, 0), atol=1e-14)


# ---------------------------------------------------------------- real GO (bundled snapshot)
def _real_gene_terms(ont, ann, names):
    """Filtered term lists per gene, straight from the coded arrays (no incidence matrix)."""
    lookup = ont.index()
    pos = {g: i for i, g in enumerate(ann.gene_names.tolist())}
    out = []
    for n in names:
        gi = pos[n]
        ids = {lookup.get(ann.term_names[t]) for t in ann.term[ann.gene == gi]}
        out.append(sorted(ont.ids[i] for i in ids if i is not None and not ont.obsolete[i]))
    return out


def test_fast_equals_reference_real_go_200_genes():
    ont, ann = _graph.bundled()
    names = [g for g in list(st.datasets.her2st_panel())[:400] if g in set(ann.gene_names.tolist())][:200]
    assert len(names) == 200
    adata = _mk(names)
    st.pp.gene_ontology_graph(adata)
    gene_terms = _real_gene_terms(ont, ann, names)
    idx = {t: i for i, t in enumerate(ont.ids.tolist())}
    parents = {}
    for c, p in ont.is_a.T:
        parents.setdefault(ont.ids[c], []).append(ont.ids[p])
    needed = set()
    stack = [t for ts in gene_terms for t in ts]
    while stack:
        t = stack.pop()
        if t not in needed:
            needed.add(t)
            stack.extend(parents.get(t, []))
    ns = ("biological_process", "molecular_function", "cellular_component")
    terms = {t: {"ns": ns[ont.domain[idx[t]]], "is_a": parents.get(t, [])} for t in needed}
    ref = reference(terms, gene_terms)
    np.testing.assert_allclose(adata.varp["sthisto_go_similarity"], ref, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(
        adata.varp["sthisto_go_connectivities"].toarray().astype(bool), reference_graph(ref, 10))
    assert adata.uns["sthisto_go"]["n_terms"]["biological_process"] > 500


# ---------------------------------------------------------------- AnnData contract, cache, bad input
def test_contract_copy_and_h5ad(hand_files, tmp_path):
    obo, gaf = hand_files
    adata = _mk(["G1", "G2", "G3", "G4alias", "G5"])
    out = st.pp.gene_ontology_graph(adata, ontology=obo, annotations=gaf, copy=True, key_added="sthisto_go2")
    assert "sthisto_go2_connectivities" not in adata.varp and "sthisto_go2" not in adata.uns
    adj = out.varp["sthisto_go2_connectivities"]
    assert sp.issparse(adj) and adj.dtype == np.float32 and (adj != adj.T).nnz == 0
    assert np.all(adj.diagonal() == 1)
    assert out.uns["sthisto_go2"]["params"]["norm"] == "paper"
    out.write_h5ad(tmp_path / "go.h5ad")


def test_ontology_cache_second_call_does_not_parse(hand_files, monkeypatch):
    obo, _ = hand_files
    first = _obo.read_obo(obo)
    monkeypatch.setattr(_obo, "_parse_obo", lambda *a: (_ for _ in ()).throw(AssertionError("re-parsed")))
    second = _obo.read_obo(obo)
    np.testing.assert_array_equal(first.ids, second.ids)
    np.testing.assert_array_equal(first.is_a, second.is_a)
    np.testing.assert_array_equal(second.depth[[0, 1, 3, 5]], [0, 1, 2, 3])


def test_gene2go(hand_files, tmp_path):
    obo, _ = hand_files
    g2g = tmp_path / "gene2go"
    g2g.write_text("#tax_id\tGeneID\tGO_ID\tEvidence\tQualifier\tGO_term\tPubMed\tCategory\n"
                   f"9606\t1\t{C}\tIDA\tenables\tx\t-\tProcess\n9606\t2\t{D}\tIDA\t-\tx\t-\tProcess\n"
                   f"9606\t2\t{E}\tIDA\tNOT\tx\t-\tProcess\n")
    adata = _mk(["1", "2"])
    st.pp.gene_ontology_graph(adata, ontology=obo, annotations=g2g)
    np.testing.assert_allclose(adata.varp["sthisto_go_similarity"], [[1, 1], [1, 3 / 2]], atol=1e-14)


def test_bad_input(hand_files, tmp_path):
    obo, gaf = hand_files
    junk = tmp_path / "junk.obo"
    junk.write_text("<?xml version='1.0'?><rdf/>\n")
    with pytest.raises(ValueError, match="not an OBO"):
        st.pp.gene_ontology_graph(_mk(["G1", "G2"]), ontology=junk, annotations=gaf)
    bad_gaf = tmp_path / "bad.gaf"
    bad_gaf.write_text("!gaf-version: 2.1\nUniProtKB\tX\tG1\t\tGO:0000004\tPMID:1\tIDA\n")
    with pytest.raises(ValueError, match="columns"):
        st.pp.gene_ontology_graph(_mk(["G1", "G2"]), ontology=obo, annotations=bad_gaf)
    with pytest.raises(ValueError, match="none of the 2 var_names"):
        st.pp.gene_ontology_graph(_mk(["X1", "X2"]), ontology=obo, annotations=gaf)
    with pytest.raises(ValueError, match="at least 2 genes"):
        st.pp.gene_ontology_graph(_mk(["G1"]), ontology=obo, annotations=gaf)
    dup = _mk(["G1", "G2"])
    dup.var_names = ["G1", "G1"]
    with pytest.raises(ValueError, match="not unique"):
        st.pp.gene_ontology_graph(dup, ontology=obo, annotations=gaf)
    with pytest.raises(ValueError, match="norm"):
        st.pp.gene_ontology_graph(_mk(["G1", "G2"]), ontology=obo, annotations=gaf, norm="max")
    with pytest.raises(ValueError, match="relations"):
        st.pp.gene_ontology_graph(_mk(["G1", "G2"]), ontology=obo, annotations=gaf, relations=("part_of",))
    cyc = dict(HAND)
    cyc[A] = {"ns": "biological_process", "is_a": [R, E]}
    with pytest.raises(ValueError, match="cycle"):
        st.pp.gene_ontology_graph(_mk(["G1", "G2"]), ontology=write_obo(tmp_path / "c.obo", cyc), annotations=gaf)
