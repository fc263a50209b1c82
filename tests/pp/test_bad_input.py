"""Bad input to the graph, GO, gene-embedding and bin steps: checked first, named, nothing half-written."""

import numpy as np
import pytest
import scipy.sparse as sp

import sthisto as st
from sthisto._errors import FileFormatError, InputError
from tests._unchanged import assert_unchanged


@pytest.fixture(scope="module")
def _bins_cache():
    a = st.datasets.synthetic(n_spots=36, n_genes=10, grid="square", spot_diameter_um=50, spot_pitch_um=50)
    st.pp.segment_nuclei(a, tile_size=256)
    return a


@pytest.fixture
def bins(_bins_cache):
    return _bins_cache.copy()


def test_lattice_indices_must_be_whole_numbers(bins):
    bins.obs["array_row"] = bins.obs["array_row"] + 0.5
    before = bins.copy()
    with pytest.raises(InputError, match=r"^adata\.obs\['array_row'\] holds 36 value\(s\) that are not whole numbers "
                                         r"\(e\.g\. 0\.5 at 'spot0000'\); a bin lattice index is an "
                                         r"integer row/column\.$"):
        st.pp.lattice_graph(bins)
    with pytest.raises(InputError, match="not whole numbers"):
        st.pp.bin_nuclei_features(bins)
    assert_unchanged(bins, before)


def test_a_lattice_without_neighbours(bins):
    bins = bins[(bins.obs["array_row"] % 2 == 0) & (bins.obs["array_col"] % 2 == 0)].copy()
    with pytest.raises(InputError, match=r"^no two bins are neighbours on the lattice of obs\['array_row'\]/"
                                         r"obs\['array_col'\] \(9 bins, none adjacent\)"):
        st.pp.lattice_graph(bins)
    assert "spatial_connectivities" not in bins.obsp
    with pytest.raises(InputError, match=r"^n_neighs must be one of \(4, 8\), got 6\."):
        st.pp.lattice_graph(bins, n_neighs=6)


def test_bin_context_and_memory(bins):
    before = bins.copy()
    with pytest.raises(InputError, match=r"^context=10 bins reaches beyond the whole lattice \(6 bins across\); give "
                                         r"a context of a few bins\.$"):
        st.pp.bin_nuclei_features(bins, context=10)
    with pytest.raises(InputError, match=r"^context must be an integer >= 0, got 1\.5\."):
        st.pp.bin_nuclei_features(bins, context=1.5)
    assert_unchanged(bins, before)


def test_bins_to_nuclei_sums_raw_counts_only_and_shares_nothing(bins, tmp_path):
    out = st.pp.bins_to_nuclei(bins)
    images = out.uns["spatial"]["synthetic"]["images"]
    assert images is not bins.uns["spatial"]["synthetic"]["images"]
    assert not np.shares_memory(images["hires"], bins.uns["spatial"]["synthetic"]["images"]["hires"])
    bins.X = bins.X / 3.3
    with pytest.raises(InputError, match=r"^adata: adata\.X: counts are not integers"):
        st.pp.bins_to_nuclei(bins)
    bins.X = bins.X * 3.3
    bins.X.data = np.rint(bins.X.data)
    (tmp_path / "labels.npy").write_bytes(b"not a numpy file")
    bins.uns["sthisto_nuclei"]["params"]["labels_path"] = str(tmp_path / "labels.npy")
    with pytest.raises(FileFormatError, match=r"^cannot read the label image .*labels\.npy: .* Expected the \(H, W\) "
                                              r"integer \.npy label image written by sthisto\.pp\.segment_nuclei"):
        st.pp.bins_to_nuclei(bins)
    np.save(tmp_path / "labels.npy", np.zeros((5, 5), np.int32))
    with pytest.raises(FileFormatError, match=r"label image .*labels\.npy: is 5×5 px but the image is \d+×\d+"):
        st.pp.bins_to_nuclei(bins)
    with pytest.raises(InputError, match=r"^max_distance_um must be a positive finite number, got -1\."):
        st.pp.bins_to_nuclei(bins, max_distance_um=-1)


def test_knn_graph_and_hop_rings_check_their_arrays():
    with pytest.raises(InputError, match=r"^xy must be an \(n, 2\) array of x, y coordinates, got shape \(10,\)\.$"):
        st.pp.knn_graph(np.arange(10.0))
    with pytest.raises(InputError, match=r"^xy holds 1 NaN or infinite coordinate\(s\)\.$"):
        st.pp.knn_graph(np.array([[0, 0], [np.nan, 1], [2, 2.0]]), n_neighs=1)
    with pytest.raises(InputError, match=r"^symmetric must be True or False, got 'no'\.$"):
        st.pp.knn_graph(np.random.default_rng(0).normal(size=(10, 2)), symmetric="no")
    with pytest.raises(InputError, match=r"^connectivities must be a square \(n, n\) numeric adjacency matrix, got "
                                         r"coo_matrix of shape \(5, 4\)\.$"):
        st.pp.hop_rings(sp.coo_matrix(np.ones((5, 4))))
    with pytest.raises(InputError, match=r"^max_hop must be an integer >= 1, got 0\.$"):
        st.pp.hop_rings(sp.eye(4), max_hop=0)


def test_spatial_graph_symmetric_must_be_a_boolean(synthetic_adata):
    before = synthetic_adata.copy()
    with pytest.raises(InputError, match=r"^symmetric must be True or False, got 'no'\.$"):
        st.pp.spatial_graph(synthetic_adata, symmetric="no")
    assert_unchanged(synthetic_adata, before)


@pytest.fixture
def toy_go(synthetic_adata, tmp_path):
    obo, gaf = tmp_path / "toy.obo", tmp_path / "toy.gaf"
    obo.write_text(synthetic_adata.uns["sthisto_synthetic"]["go_obo"])
    gaf.write_text(synthetic_adata.uns["sthisto_synthetic"]["go_gaf"])
    return {"ontology": obo, "annotations": gaf}


def test_go_names_are_names_not_letters(synthetic_adata, toy_go):
    a, b = synthetic_adata.copy(), synthetic_adata.copy()
    st.pp.gene_ontology_graph(a, relations="is_a", evidence_exclude="IEA", **toy_go)
    st.pp.gene_ontology_graph(b, relations=("is_a",), evidence_exclude=("IEA",), **toy_go)
    assert a.uns["sthisto_go"]["params"]["evidence_exclude"] == ["IEA"]  # not ['I', 'E', 'A']
    assert (a.varp["sthisto_go_connectivities"] != b.varp["sthisto_go_connectivities"]).nnz == 0
    before = synthetic_adata.copy()
    for kwargs, message in [({"top_k": 2.5}, r"top_k must be an integer >= 1, got 2\.5\."),
                            ({"threshold": float("nan")}, r"threshold must be a finite number, got nan\."),
                            ({"include_self": "yes"}, r"include_self must be True or False, got 'yes'\."),
                            ({"relations": [1]}, r"relations must hold names \(strings\), got 1 in \[1\]\.")]:
        with pytest.raises(InputError, match=f"^{message}$"):
            st.pp.gene_ontology_graph(synthetic_adata, **toy_go, **kwargs)
    assert_unchanged(synthetic_adata, before)


def test_go_files(synthetic_adata, toy_go, tmp_path):
    import gzip

    (tmp_path / "cut.obo.gz").write_bytes(gzip.compress(toy_go["ontology"].read_bytes())[:60])
    with pytest.raises(FileFormatError, match=r"^cannot read the ontology file .*cut\.obo\.gz: .* Expected an OBO "
                                              r"1\.2/1\.4 file"):
        st.pp.gene_ontology_graph(synthetic_adata, ontology=tmp_path / "cut.obo.gz",
                                  annotations=toy_go["annotations"])
    with pytest.raises(IsADirectoryError, match=r"^annotations file \(annotations=\) .* is a folder"):
        st.pp.gene_ontology_graph(synthetic_adata, ontology=toy_go["ontology"], annotations=tmp_path)
    with pytest.raises(TypeError, match=r"^ontology file \(ontology=\) must be a path \(str or os\.PathLike\), got "
                                        r"int 5\.$"):
        st.pp.gene_ontology_graph(synthetic_adata, ontology=5)


def test_gene_embeddings_huge_dim(synthetic_adata):
    with pytest.raises(InputError, match=r"^50 gene vectors of dim=1000000000 would need .* GiB of memory, more than "
                                         r"this machine has .* To fix: lower dim \(Gene2Vec uses 200\)\.$"):
        st.pp.gene_embeddings(synthetic_adata, dim=10**9)
