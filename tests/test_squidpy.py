"""squidpy / scanpy interplay: squidpy graphs go into tl.fit as is; squidpy and scanpy plots draw sthisto outputs."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import sthisto as st  # noqa: E402
from sthisto.tl._data import spot_graph  # noqa: E402
from tests.conftest import import_spatial  # noqa: E402
from tests.tl._model_data import FAST, model_sections  # noqa: E402

sq = import_spatial("squidpy")


def _squidpy_graph(adata, **kwargs):
    with warnings.catch_warnings():  # squidpy >= 1.8 deprecates the wrapper (same builders)
        warnings.simplefilter("ignore", FutureWarning)
        sq.gr.spatial_neighbors(adata, **kwargs)
    return adata


def test_squidpy_knn_graph_trains_the_same_model_as_ours():
    ours = model_sections((0, 1))
    theirs = model_sections((0, 1))
    for a in theirs:
        del a.obsp["spatial_connectivities"], a.obsp["spatial_distances"]
        _squidpy_graph(a, coord_type="generic", n_neighs=6)  # directed kNN, squidpy's own keys
    kw = FAST
    m1, m2 = st.tl.fit(ours, **kw), st.tl.fit(theirs, **kw)
    np.testing.assert_array_equal(m1.predict(ours[0]), m2.predict(theirs[0]))


@pytest.mark.parametrize("kwargs", [{"coord_type": "generic", "delaunay": True},
                                    {"coord_type": "generic", "radius": 120.0},
                                    {"coord_type": "grid", "n_neighs": 6},
                                    {"coord_type": "generic", "n_neighs": 6, "set_diag": True}])
def test_any_squidpy_graph_is_accepted_as_is(kwargs):
    (a,) = model_sections((0,))
    del a.obsp["spatial_connectivities"], a.obsp["spatial_distances"]
    _squidpy_graph(a, **kwargs)
    raw = sp.csr_matrix(a.obsp["spatial_connectivities"])
    graph = spot_graph(a)
    expected = (raw + raw.T) != 0
    expected.setdiag(False)
    expected.eliminate_zeros()
    assert (graph.astype(bool) != expected).nnz == 0
    model = st.tl.fit([a], **FAST)
    st.tl.predict(a, model)
    assert np.isfinite(a.layers["sthisto_pred"][:, a.var_names.get_indexer(model.genes)]).all()


@pytest.fixture(scope="module")
def predicted():
    """The bundled HER2ST C2 section with a texture-feature model's predictions (layer sthisto_pred)."""
    adata = st.datasets.her2st_demo(["C2"])[0]
    adata = adata[:, ["ERBB2", "GNAS", "KRT19", "CD74", "COL1A1", "ACTB", "MGP", "SPARC"]].copy()
    st.pp.image_features(adata, model="texture", patch_px=64)
    st.pp.spatial_graph(adata)
    model = st.tl.fit([adata], genes=list(adata.var_names), modalities=("texture",), epochs=5,
                      use_go=False, progress=False)
    st.tl.predict(adata, model)
    return adata


def _spot_collection(ax, n):
    cols = [c for c in ax.collections if len(np.atleast_2d(c.get_facecolors())) == n
            or (c.get_array() is not None and len(c.get_array()) == n)]
    assert cols, "no collection with one element per spot"
    return cols[0]


def test_squidpy_spatial_scatter_draws_predictions(predicted):
    fig, ax = plt.subplots()
    sq.pl.spatial_scatter(predicted, color="ERBB2", layer="sthisto_pred", img_res_key="hires",
                          library_id="C2", shape="circle", ax=ax)
    values = _spot_collection(ax, predicted.n_obs).get_array()
    np.testing.assert_allclose(np.sort(np.asarray(values)),
                               np.sort(predicted[:, "ERBB2"].layers["sthisto_pred"].ravel()), rtol=1e-5)
    assert ax.images, "the H&E is drawn"
    plt.close(fig)


def test_scanpy_spatial_draws_predictions(predicted):
    import scanpy as sc

    ax = sc.pl.spatial(predicted, color="GNAS", layer="sthisto_pred", img_key="hires", show=False)[0]
    values = _spot_collection(ax, predicted.n_obs).get_array()
    np.testing.assert_allclose(np.sort(np.asarray(values)),
                               np.sort(predicted[:, "GNAS"].layers["sthisto_pred"].ravel()), rtol=1e-5)
    assert ax.images
    plt.close(ax.figure)


def test_scanpy_spatial_draws_a_section_read_from_spatialdata(synthetic_adata):
    import scanpy as sc

    import_spatial("spatialdata")
    adata = st.read.spatialdata(st.io.to_spatialdata(synthetic_adata))
    ax = sc.pl.spatial(adata, color=adata.var_names[0], img_key="hires", show=False)[0]
    values = _spot_collection(ax, adata.n_obs).get_array()
    np.testing.assert_allclose(np.sort(np.asarray(values)), np.sort(adata[:, 0].X.toarray().ravel()))
    plt.close(ax.figure)
