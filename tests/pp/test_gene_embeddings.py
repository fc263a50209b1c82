import subprocess
import sys

import numpy as np
import pytest

import sthisto as st
from sthisto.pp._gene_embeddings import coexpressed_pairs


def test_train_reproducible_and_contract(synthetic_sections, tmp_path):
    a = synthetic_sections[0]
    st.pp.gene_embeddings(a, adatas=synthetic_sections, dim=16, epochs=3, seed=1)
    v = a.varm["sthisto_gene2vec"]
    assert v.shape == (a.n_vars, 16) and v.dtype == np.float32 and np.isfinite(v).all()
    info = a.uns["sthisto_gene2vec"]
    assert info["coverage"] == 1.0 and info["n_missing"] == 0 and info["n_pairs"] > a.n_vars
    assert info["params"]["n_sections"] == 3
    again = st.pp.gene_embeddings(a, adatas=synthetic_sections, dim=16, epochs=3, seed=1, copy=True)
    np.testing.assert_array_equal(again.varm["sthisto_gene2vec"], v)
    other = st.pp.gene_embeddings(a, adatas=synthetic_sections, dim=16, epochs=3, seed=2, copy=True)
    assert not np.allclose(other.varm["sthisto_gene2vec"], v)
    a.write_h5ad(tmp_path / "g.h5ad")


def test_reproducible_across_processes(synthetic_adata, tmp_path):
    """gensim seeds vectors with a hash: ours is process-independent (PYTHONHASHSEED varies)."""
    synthetic_adata.write_h5ad(tmp_path / "s.h5ad")
    code = ("import anndata, numpy, sthisto as st, sys; a = anndata.read_h5ad(sys.argv[1]); "
            "st.pp.gene_embeddings(a, dim=8, epochs=2); numpy.save(sys.argv[2], a.varm['sthisto_gene2vec'])")
    outs = []
    for hs in ("1", "2"):
        out = tmp_path / f"v{hs}.npy"
        subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.h5ad"), str(out)], check=True,
                       env={**__import__("os").environ, "PYTHONHASHSEED": hs})
        outs.append(np.load(out))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_coexpressed_genes_are_closer(synthetic_sections):
    a = synthetic_sections[0]
    st.pp.gene_embeddings(a, adatas=synthetic_sections, dim=32, epochs=20)
    v = a.varm["sthisto_gene2vec"].astype(float)
    v -= v.mean(axis=0)  # skip-gram vectors share a common direction; compare centred vectors
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cos = v @ v.T
    pairs = {tuple(sorted(p)) for s in synthetic_sections for p in coexpressed_pairs(s)}
    pos = a.var_names.get_indexer
    on = np.mean([cos[pos([p])[0], pos([q])[0]] for p, q in pairs])
    iu = np.triu_indices(a.n_vars, 1)
    assert on > cos[iu].mean() + 0.2


def test_pairs_threshold_and_neighbors(synthetic_adata):
    x = np.log1p(synthetic_adata.X.toarray() / synthetic_adata.X.toarray().sum(1, keepdims=True) * 1e4)
    r = np.corrcoef(x.T)
    pairs = coexpressed_pairs(synthetic_adata, min_corr=0.6, n_neighbors=0)
    idx = synthetic_adata.var_names.get_indexer
    got = {tuple(sorted((int(idx([p])[0]), int(idx([q])[0])))) for p, q in pairs}
    want = {(i, j) for i in range(r.shape[0]) for j in range(i + 1, r.shape[0]) if r[i, j] >= 0.6}
    assert got == want
    with_nn = coexpressed_pairs(synthetic_adata, min_corr=1.1, n_neighbors=1)
    covered = {g for p in with_nn for g in p}
    assert covered == set(synthetic_adata.var_names)


@pytest.mark.parametrize("binary", [False, True])
def test_pretrained_file_and_missing_genes(synthetic_adata, tmp_path, binary):
    from gensim.models import KeyedVectors

    names = list(synthetic_adata.var_names[:30]) + ["NOT_A_GENE"]
    rng = np.random.default_rng(0)
    kv = KeyedVectors(vector_size=5)
    kv.add_vectors(names, rng.normal(size=(len(names), 5)).astype(np.float32))
    path = tmp_path / ("v.bin" if binary else "v.txt")
    kv.save_word2vec_format(str(path), binary=binary)
    st.pp.gene_embeddings(synthetic_adata, path=path)
    v = synthetic_adata.varm["sthisto_gene2vec"]
    assert v.shape == (synthetic_adata.n_vars, 5)
    np.testing.assert_allclose(v[:30], kv[names[:30]], rtol=1e-6)
    miss = synthetic_adata.var["sthisto_gene2vec_missing"].to_numpy()
    assert miss.sum() == synthetic_adata.n_vars - 30 and not miss[:30].any()
    np.testing.assert_allclose(v[miss], np.broadcast_to(kv[names[:30]].mean(0), (miss.sum(), 5)), rtol=1e-5)
    assert synthetic_adata.uns["sthisto_gene2vec"]["coverage"] == pytest.approx(30 / synthetic_adata.n_vars)


def test_bad_input(synthetic_adata, tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("this is not\na vector file\n")
    with pytest.raises(ValueError, match="word2vec"):
        st.pp.gene_embeddings(synthetic_adata, path=junk)
    with pytest.raises(ValueError, match="method"):
        st.pp.gene_embeddings(synthetic_adata, method="glove")
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["X", "Y"], np.ones((2, 3), dtype=np.float32))
    kv.save_word2vec_format(str(tmp_path / "xy.txt"))
    with pytest.raises(ValueError, match="no gene of var_names"):
        st.pp.gene_embeddings(synthetic_adata, path=tmp_path / "xy.txt")
    tiny = synthetic_adata[:2].copy()
    with pytest.raises(ValueError, match="no co-expressed gene pairs"):
        st.pp.gene_embeddings(tiny)
