import numpy as np
import pandas as pd
import pytest

import sthisto as st
from sthisto._expression import log_normalized
from sthisto.tl._baselines import feature_matrix, fit_baseline
from sthisto.tl._metrics import gene_metrics

from ._eval_data import sections_with_features


@pytest.fixture
def sections(synthetic_sections):
    return sections_with_features(synthetic_sections)


def _pcc(model, test, genes):
    return gene_metrics(log_normalized(test, genes), model.predict(test), genes)


def test_ridge_beats_mean_and_knn_learns(sections):
    train, test = sections[:2], sections[2]
    genes = list(test.var_names)
    ridge = _pcc(fit_baseline(train, method="ridge", genes=genes, modalities=["deep"]), test, genes)
    knn = _pcc(fit_baseline(train, method="knn", genes=genes, modalities=["deep"]), test, genes)
    mean = _pcc(fit_baseline(train, method="mean", genes=genes, modalities=["deep"]), test, genes)
    # program genes (not the noise genes, program -1) are predictable from the features
    signal = test.var["program"].to_numpy() >= 0
    assert ridge["pcc"][signal].mean() > 0.5
    assert knn["pcc"][signal].mean() > 0.3
    assert mean["pcc"].isna().all() and (mean["pcc_undefined"] == "constant_prediction").all()
    assert ridge["mse"].mean() < mean["mse"].mean()


def test_mean_predicts_training_mean(sections):
    train, test = sections[:2], sections[2]
    genes = list(test.var_names[:4])
    pred = fit_baseline(train, method="mean", genes=genes, modalities="deep").predict(test)
    pooled = np.concatenate([log_normalized(a, genes) for a in train])
    np.testing.assert_allclose(pred, np.repeat(pooled.mean(0)[None], test.n_obs, 0))


def test_hest_probe_is_the_untuned_hest_recipe(sections):
    train = sections[:2]
    genes = list(train[0].var_names[:5])
    m = fit_baseline(train, method="hest_probe", genes=genes, modalities=["deep"], n_components=256)
    # PCA capped by the 8 feature columns; HEST's alpha = 100 / (n_components * n_genes)
    assert m.params == {"n_components": 8, "alpha": pytest.approx(100 / (8 * 5))}
    assert [type(s).__name__ for s in m.estimator] == ["StandardScaler", "PCA", "Ridge"]


def _inner_pcc_reference(train, genes, make):
    """Leave one training section out by hand: the mean over held-out sections of the mean gene PCC."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = []
    for i, val in enumerate(train):
        fit_on = [a for j, a in enumerate(train) if j != i]
        x = np.concatenate([a.obsm["sthisto_deep"] for a in fit_on]).astype(np.float32).astype(np.float64)
        y = np.concatenate([log_normalized(a, genes) for a in fit_on])
        est = make_pipeline(StandardScaler(), make()).fit(x, y)
        pred = est.predict(val.obsm["sthisto_deep"].astype(np.float32).astype(np.float64))
        scores.append(np.nanmean(gene_metrics(log_normalized(val, genes), pred, genes)["pcc"]))
    return float(np.mean(scores))


def test_ridge_alpha_and_knn_k_are_chosen_by_inner_validation(sections):
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsRegressor

    train, genes = sections[:2], list(sections[0].var_names[:12])
    alphas = [0.1, 10.0, 1e4]
    m = fit_baseline(train, method="ridge", genes=genes, modalities=["deep"], alphas=alphas)
    expected = {a: _inner_pcc_reference(train, genes, lambda a=a: Ridge(alpha=a)) for a in alphas}
    assert m.params["inner_pcc"] == pytest.approx(expected)
    assert m.params["alpha"] == max(expected, key=expected.get)
    knn = fit_baseline(train, method="knn", genes=genes, modalities=["deep"], neighbors=[1, 15])
    expected = {k: _inner_pcc_reference(train, genes, lambda k=k: KNeighborsRegressor(n_neighbors=k))
                for k in (1, 15)}
    assert knn.params["inner_pcc"] == pytest.approx(expected)
    assert knn.params["n_neighbors"] == max(expected, key=expected.get) == 15  # k=1 overfits the noise
    # one value fixes the knob: no inner validation
    assert fit_baseline(train, method="ridge", genes=genes, modalities=["deep"], alphas=[3.0]).params == {
        "alpha": 3.0, "inner_pcc": {}}


def test_single_training_section_validates_on_its_spatial_halves(sections):
    m = fit_baseline(sections[:1], method="ridge", genes=list(sections[0].var_names[:6]), modalities=["deep"],
                     alphas=[0.1, 1e6])
    assert set(m.params["inner_pcc"]) == {0.1, 1e6} and np.isfinite(list(m.params["inner_pcc"].values())).all()


def test_context_features_append_the_neighbourhood_mean(sections):
    for s in sections:
        st.pp.spatial_graph(s, n_neighs=6)
    a = sections[0]
    x = feature_matrix(a, ["deep"], context=True)
    own = a.obsm["sthisto_deep"].astype(np.float32).astype(np.float64)
    graph = a.obsp["spatial_connectivities"].toarray() > 0
    np.fill_diagonal(graph, False)
    graph |= graph.T
    expected = np.array([own[row].mean(0) if row.any() else own[i] for i, row in enumerate(graph)])
    np.testing.assert_allclose(x, np.hstack([own, expected]))
    m = fit_baseline(sections[1:], method="ridge_context", genes=list(a.var_names[:4]), modalities=["deep"])
    assert m.n_features == 16 and m.predict(a).shape == (a.n_obs, 4)


def test_features_concatenated_and_checked(sections):
    a = sections[0]
    a.obsm["sthisto_morphology"] = pd.DataFrame(np.ones((a.n_obs, 2)), index=a.obs_names)
    x = feature_matrix(a, ["deep", "morphology"])
    assert x.shape == (a.n_obs, 10)
    # read as M2TGLGO reads them (float32), so both see the same numbers
    np.testing.assert_allclose(x[:, :8], a.obsm["sthisto_deep"], rtol=1e-6)
    with pytest.raises(KeyError, match="sthisto.pp.nuclei_features"):
        feature_matrix(a, ["topology"])
    a.obsm["sthisto_deep"][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        feature_matrix(a, ["deep"])
    m = fit_baseline(sections[1:], method="knn", genes=list(a.var_names[:2]), modalities=["deep"])
    a.obsm["sthisto_deep"] = np.zeros((a.n_obs, 3))
    with pytest.raises(ValueError, match="feature columns"):
        m.predict(a)
