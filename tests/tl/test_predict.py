import anndata as ad
import numpy as np
import pandas as pd
import pytest

import sthisto as st

from ._model_data import FAST, model_sections


@pytest.fixture(scope="module")
def model():
    return st.tl.fit(model_sections((0, 1)), **FAST)


def test_predict_writes_layer_and_uns(model):
    (a,) = model_sections((2,))
    before = a.X.copy()
    assert st.tl.predict(a, model) is None
    pred = a.layers["sthisto_pred"]
    assert pred.shape == a.shape and pred.dtype == np.float32
    cols = a.var_names.get_indexer(model.genes)
    others = np.setdiff1d(np.arange(a.n_vars), cols)
    assert np.isfinite(pred[:, cols]).all()
    assert np.isnan(pred[:, others]).all()
    np.testing.assert_array_equal(pred[:, cols], model.predict(a))
    uns = a.uns["sthisto_pred"]
    assert list(uns["genes"]) == model.genes
    assert uns["model_version"] == st.__version__
    assert uns["params"]["gamma"] == 0.6 and uns["layer"] == "None" and uns["epochs"] == 3
    assert (a.X != before).nnz == 0  # inputs untouched


def test_predict_copy_and_key_added(model, tmp_path):
    (a,) = model_sections((2,))
    out = st.tl.predict(a, model, key_added="m2", copy=True)
    assert "m2" in out.layers and "m2" not in a.layers and "m2" in out.uns
    out.write_h5ad(tmp_path / "pred.h5ad")  # uns params are h5ad-serialisable
    back = ad.read_h5ad(tmp_path / "pred.h5ad")
    np.testing.assert_array_equal(back.layers["m2"], out.layers["m2"])


def test_predict_with_some_genes_missing_warns(model, caplog):
    (a,) = model_sections((2,))
    drop = model.genes[:3]
    a = a[:, ~a.var_names.isin(drop)].copy()
    with caplog.at_level("WARNING", logger="sthisto"):
        st.tl.predict(a, model)
    assert "3 of 20 model genes" in caplog.text
    assert list(a.uns["sthisto_pred"]["genes"]) == model.genes[3:]


def test_predict_he_only_section(model):
    (a,) = model_sections((2,))
    he = ad.AnnData(obs=a.obs.copy(), obsm=dict(a.obsm), obsp=dict(a.obsp), uns={"spatial": a.uns["spatial"]})
    assert he.n_vars == 0
    with pytest.raises(KeyError, match="predict_anndata"):
        st.tl.predict(he, model)
    out = st.tl.predict_anndata(he, model)
    assert list(out.var_names) == model.genes
    assert out.obs_names.equals(a.obs_names)
    np.testing.assert_array_equal(out.X, model.predict(a))
    np.testing.assert_array_equal(out.layers["sthisto_pred"], out.X)
    assert "spatial" in out.obsm and "spatial" in out.uns
    assert list(out.uns["sthisto_pred"]["genes"]) == model.genes


def test_predict_bad_input(model):
    (a,) = model_sections((2,))
    with pytest.raises(TypeError, match="M2TGLGO"):
        st.tl.predict(a, object())
    b = a.copy()
    b.obsm["sthisto_topology"] = b.obsm["sthisto_topology"].iloc[:, :2]
    with pytest.raises(ValueError, match="topology features"):
        st.tl.predict(b, model)
    c = a.copy()
    c.obsm["sthisto_morphology"].iloc[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        st.tl.predict(c, model)
    with pytest.raises(ValueError, match="at least 7"):
        st.tl.predict(a[:5].copy(), model)
    d = a.copy()
    del d.obsm["sthisto_deep"]
    with pytest.raises(KeyError, match="image_features"):
        st.tl.predict(d, model)


def test_predict_accepts_dataframe_or_array_features(model):
    (a,) = model_sections((2,))
    b = a.copy()
    b.obsm["sthisto_deep"] = pd.DataFrame(b.obsm["sthisto_deep"], index=b.obs_names)
    b.obsm["sthisto_morphology"] = b.obsm["sthisto_morphology"].to_numpy()
    np.testing.assert_array_equal(model.predict(a), model.predict(b))


def test_feature_columns_are_matched_by_name_not_position(model, caplog):
    (a,) = model_sections((2,))
    b = a.copy()
    morph = b.obsm["sthisto_morphology"]
    b.obsm["sthisto_morphology"] = morph[morph.columns[::-1]]  # same width, reversed columns
    with caplog.at_level("INFO", logger="sthisto"):
        np.testing.assert_array_equal(model.predict(a), model.predict(b))
    assert "matched by name" in caplog.text
    c = a.copy()
    c.obsm["sthisto_morphology"] = morph.rename(columns={morph.columns[0]: "renamed"})
    with pytest.raises(ValueError, match=r"lack columns the model was trained on: missing \['"
                       + morph.columns[0] + r"'\], unexpected \['renamed'\]"):
        model.predict(c)
