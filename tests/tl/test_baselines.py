import numpy as np
import pandas as pd
import pytest

from sthisto._expression import log_normalized
from sthisto.tl._baselines import feature_matrix, fit_baseline
from sthisto.tl._evaluate import gene_metrics

from ._eval_data import sections_with_features


@pytest.fixture
def sections(synthetic_sections):
    return sections_with_features(synthetic_sections)


def _pcc(model, test, genes):
    return gene_metrics(log_normalized(test, genes), model.predict(test), genes)


def test_ridge_beats_mean_and_knn_learns(sections):
    train, test = sections[:2], sections[2]
    genes = list(test.var_names)
    ridge = _pcc(fit_baseline(train, method="ridge", genes=genes, features=["deep"]), test, genes)
    knn = _pcc(fit_baseline(train, method="knn", genes=genes, features=["deep"]), test, genes)
    mean = _pcc(fit_baseline(train, method="mean", genes=genes, features=["deep"]), test, genes)
    # program genes (not the noise genes, program -1) are predictable from the features
    signal = test.var["program"].to_numpy() >= 0
    assert ridge["pcc"][signal].mean() > 0.5
    assert knn["pcc"][signal].mean() > 0.3
    assert mean["pcc"].isna().all() and (mean["pcc_undefined"] == "constant_prediction").all()
    assert ridge["mse"].mean() < mean["mse"].mean()


def test_mean_predicts_training_mean(sections):
    train, test = sections[:2], sections[2]
    genes = list(test.var_names[:4])
    pred = fit_baseline(train, method="mean", genes=genes, features="deep").predict(test)
    pooled = np.concatenate([log_normalized(a, genes) for a in train])
    np.testing.assert_allclose(pred, np.repeat(pooled.mean(0)[None], test.n_obs, 0))


def test_ridge_is_hest_probe(sections):
    train = sections[:2]
    genes = list(train[0].var_names[:5])
    m = fit_baseline(train, method="ridge", genes=genes, features=["deep"], n_components=256)
    # PCA capped by the 8 feature columns; HEST's alpha = 100 / (n_components * n_genes)
    assert m.params == {"n_components": 8, "alpha": pytest.approx(100 / (8 * 5))}
    assert [type(s).__name__ for s in m.estimator] == ["StandardScaler", "PCA", "Ridge"]


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
    m = fit_baseline(sections[1:], method="knn", genes=list(a.var_names[:2]), features=["deep"])
    a.obsm["sthisto_deep"] = np.zeros((a.n_obs, 3))
    with pytest.raises(ValueError, match="feature columns"):
        m.predict(a)
