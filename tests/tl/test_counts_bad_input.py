"""Counts that are not counts, duplicated gene names and shared outputs in fit / predict / evaluate."""

import numpy as np
import pytest
import scipy.sparse as sp

import sthisto as st
from sthisto._errors import InputError
from tests._unchanged import assert_unchanged

from ._model_data import FAST, model_sections


@pytest.fixture(scope="module")
def model():
    return st.tl.fit(model_sections((0, 1)), **FAST)


def _log_normalised(a):
    x = a.X.multiply(1e4 / a.X.sum(axis=1)).tocsr()
    a.X = x.log1p()
    a.uns["log1p"] = {"base": None}
    return a


def test_fit_rejects_log_normalised_counts_before_training():
    a, b = model_sections((0, 1))
    _log_normalised(b)
    with pytest.raises(InputError, match=r"^training section 1: adata\.X: counts are not integers \(\d+ of \d+ stored "
                                         r"values, e\.g\. [\d.]+ at spot 'spot\d+', gene 'GENE\d+', largest value [\d.]+"
                                         r"\): they look normalised or log-transformed; pass raw UMI/read counts\. To "
                                         r"fix: put the raw counts in adata\.X or a layer and pass layer= \(adata\.uns"
                                         r"\['log1p'\] shows that scanpy\.pp\.log1p was applied to X\)"):
        st.tl.fit([a, b], **FAST)


def test_fit_rejects_all_zero_counts_and_checks_val_adata():
    a, b, v = model_sections((0, 1, 2))
    a.layers["counts"] = sp.csr_matrix(a.shape, dtype=np.float32)
    b.layers["counts"] = b.X.copy()
    with pytest.raises(InputError, match=r"^training section 0: adata\.layers\['counts'\] holds no counts \(every "
                                         r"value is 0\)\."):
        st.tl.fit([a, b], layer="counts", **FAST)
    with pytest.raises(InputError, match=r"^val_adata: adata\.X: counts are not integers"):
        st.tl.fit([b], val_adata=_log_normalised(v), **FAST)


def test_evaluate_rejects_transformed_counts_and_leaves_adata_unchanged(model):
    (a,) = model_sections((2,))
    st.tl.predict(a, model)
    a.layers["counts"] = a.X.copy()
    _log_normalised(a)
    before = a.copy()
    with pytest.raises(InputError, match=r"^adata: adata\.X: counts are not integers .* To fix: pass layer= naming the "
                                         r"layer of raw counts \(adata\.layers has \['sthisto_pred', 'counts'\]\)"):
        st.tl.evaluate(a)
    assert_unchanged(a, before)
    st.tl.evaluate(a, layer="counts")
    assert a.var["sthisto_pcc"].notna().sum() == len(model.genes)


def test_duplicated_var_names_in_predict_and_evaluate(model):
    (a,) = model_sections((2,))
    st.tl.predict(a, model)
    names = a.var_names.tolist()
    names[5] = names[4]
    a.var_names = names
    before = a.copy()
    message = r"^adata\.var_names are not unique \(e\.g\. \['GENE0004'\]\); call adata\.var_names_make_unique\(\)\.$"
    with pytest.raises(ValueError, match=message):
        st.tl.predict(a, model)
    with pytest.raises(ValueError, match=message):
        st.tl.evaluate(a)
    assert_unchanged(a, before)


def test_predict_anndata_output_does_not_share_uns_spatial(model):
    (a,) = model_sections((2,))
    before = a.copy()
    out = st.tl.predict_anndata(a, model)
    lib = next(iter(a.uns["spatial"]))
    entry = out.uns["spatial"][lib]
    entry["scalefactors"]["tissue_hires_scalef"] = 123.0
    entry["images"]["hires"][:] = 0
    entry["metadata"]["edited"] = True
    assert_unchanged(a, before)
