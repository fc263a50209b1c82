import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp
from scipy.stats import pearsonr, spearmanr

import sthisto as st
from sthisto._expression import log_normalized, targets
from sthisto.tl._metrics import gene_gene_corr, gene_metrics, ggc_arrays, pearson_columns


def test_gene_metrics_equal_scipy_numpy():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(40, 5))
    p = 0.5 * y + rng.normal(size=(40, 5))
    p[:, 4] = np.round(p[:, 4])  # ties for Spearman
    t = gene_metrics(y, p, list("abcde"))
    for j, g in enumerate("abcde"):
        assert t.loc[g, "pcc"] == pytest.approx(pearsonr(y[:, j], p[:, j])[0], abs=1e-12)
        assert t.loc[g, "spearman"] == pytest.approx(spearmanr(y[:, j], p[:, j])[0], abs=1e-12)
        assert t.loc[g, "mse"] == pytest.approx(np.mean((y[:, j] - p[:, j]) ** 2))
        assert t.loc[g, "mae"] == pytest.approx(np.mean(np.abs(y[:, j] - p[:, j])))
    assert (t["pcc_undefined"] == "").all()


def test_undefined_pcc_is_nan_and_labelled():
    y = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    p = np.array([[5.0, 1.0, 0.0], [5.0, 2.0, 1.0], [5.0, 3.0, 2.0]])
    t = gene_metrics(y, p)
    assert np.isnan(t["pcc"].iloc[0]) and t["pcc_undefined"].iloc[0] == "constant_prediction"
    assert np.isnan(t["pcc"].iloc[1]) and t["pcc_undefined"].iloc[1] == "constant_observed"
    assert t["pcc"].iloc[2] == pytest.approx(pearsonr(y[:, 2], p[:, 2])[0])
    assert t["mse"].iloc[0] == pytest.approx(np.mean((y[:, 0] - 5.0) ** 2))
    assert np.isnan(pearson_columns(np.ones((3, 1)), np.ones((3, 1)))[0])


def test_log_normalized_matches_scanpy(synthetic_adata):
    a = synthetic_adata
    ref = a.copy()
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    genes = list(a.var_names[[5, 0, 9]])
    np.testing.assert_allclose(log_normalized(a, genes), ref[:, genes].X.toarray(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets(a, genes, transform="log1p"), np.log1p(a[:, genes].X.toarray()))
    with pytest.raises(KeyError, match="not in adata.var_names"):
        log_normalized(a, ["nope"])


def _with_pred(a, genes, noise, seed=0, layer=None):
    rng = np.random.default_rng(seed)
    y = log_normalized(a, layer=layer)
    pred = np.full(a.shape, np.nan)
    idx = a.var_names.get_indexer(genes)
    pred[:, idx] = y[:, idx] + noise * rng.normal(size=(a.n_obs, len(idx)))
    a.layers["sthisto_pred"] = pred
    return y, pred


def test_evaluate_writes_var_and_uns(synthetic_adata):
    a = synthetic_adata
    genes = list(a.var_names[:10])
    y, pred = _with_pred(a, genes, 0.3)
    pred[:, 3] = 1.5  # one constant prediction
    a.layers["sthisto_pred"] = pred
    x_before = a.X.copy()
    st.tl.evaluate(a)  # genes=None -> the predicted (non-NaN) genes
    assert (a.X != x_before).nnz == 0
    pcc = a.var["sthisto_pcc"]
    assert pcc.iloc[10:].isna().all()
    assert np.isnan(pcc.iloc[3])
    assert pcc.iloc[0] == pytest.approx(pearsonr(y[:, 0], pred[:, 0])[0], abs=1e-10)
    assert a.var["sthisto_mse"].iloc[3] == pytest.approx(np.mean((y[:, 3] - 1.5) ** 2))
    s = a.uns["sthisto_metrics"]["summary"]
    assert s["n_genes"] == 10 and s["n_pcc_undefined"] == 1 and s["n_pcc_defined"] == 9
    assert s["pcc_undefined_genes"] == [genes[3]]
    defined = pcc.iloc[:10].dropna()
    assert s["mean_pcc"] == pytest.approx(defined.mean())
    assert s["median_pcc"] == pytest.approx(defined.median())
    assert a.uns["sthisto_metrics"]["params"]["genes"] == genes


def test_evaluate_copy_layer_and_errors(synthetic_adata):
    a = synthetic_adata
    a.layers["counts"] = a.X.copy()
    a.X = sp.csr_matrix(a.X.shape)  # X is no longer counts: the layer must be used
    _with_pred(a, list(a.var_names), 0.1, layer="counts")
    out = st.tl.evaluate(a, layer="counts", key_added="m2", copy=True)
    assert "m2_pcc" not in a.var and out.var["m2_pcc"].notna().all()
    assert out.uns["m2"]["summary"]["mean_pcc"] > 0.8
    with pytest.raises(KeyError, match="sthisto.tl.predict"):
        st.tl.evaluate(a, pred_key="missing")
    a.layers["sthisto_pred"][:, 0] = np.nan
    with pytest.raises(ValueError, match="missing \\(NaN\\) predictions"):
        st.tl.evaluate(a, layer="counts", genes=[a.var_names[0]])


def test_gene_correlation_recovery(synthetic_adata):
    a = synthetic_adata
    genes = list(a.var_names[:20])
    y, _ = _with_pred(a, genes, 0.05)
    good = st.tl.gene_correlation_recovery(a, genes=genes)
    _with_pred(a, genes, 3.0)
    bad = st.tl.gene_correlation_recovery(a, genes=genes)
    assert good > 0.95 and bad < good
    obs = gene_gene_corr(y[:, :20])
    np.testing.assert_allclose(obs, np.corrcoef(y[:, :20].T), atol=1e-12)
    # a constant gene is left out, not a NaN result
    p = y[:, :20].copy()
    p[:, 0] = 0.0
    r, keep = ggc_arrays(y[:, :20], p)
    assert np.isfinite(r) and not keep[0] and keep[1:].all()
