import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import sthisto as st  # noqa: E402
from sthisto._expression import log_normalized  # noqa: E402
from sthisto.pl._correlation import _gene_correlation_data  # noqa: E402

from ._compare import check_image  # noqa: E402


@pytest.fixture
def adata(synthetic_adata):
    a = synthetic_adata
    rng = np.random.default_rng(1)
    pred = log_normalized(a) + 0.4 * rng.normal(size=a.shape)
    pred[:, 12:] = np.nan
    pred[:, 3] = 2.0  # constant: left out of the heatmaps
    a.layers["sthisto_pred"] = pred
    return a


def test_prepared_data(adata):
    d = _gene_correlation_data(adata, cluster=False)
    genes = list(adata.var_names[:12])
    assert d["dropped"] == [genes[3]] and d["genes"] == genes[:3] + genes[4:]
    y = log_normalized(adata, d["genes"])
    np.testing.assert_allclose(d["observed"], np.corrcoef(y.T), atol=1e-12)
    p = adata[:, d["genes"]].layers["sthisto_pred"]
    np.testing.assert_allclose(d["predicted"], np.corrcoef(p.T), atol=1e-12)
    assert d["ggc"] == pytest.approx(st.tl.gene_correlation_recovery(adata))
    c = _gene_correlation_data(adata, cluster=True)
    assert sorted(c["genes"]) == sorted(d["genes"])
    perm = [d["genes"].index(g) for g in c["genes"]]
    np.testing.assert_allclose(c["observed"], d["observed"][np.ix_(perm, perm)])


def test_render_and_image(adata, tmp_path):
    fig, axes = plt.subplots(1, 2)
    assert st.pl.gene_correlation(adata, ax=axes) is fig
    im = axes[0].images[0]
    assert im.norm.vmin == -1 and im.norm.vmax == 1
    assert "GGC" in fig._suptitle.get_text()
    plt.close("all")
    with plt.style.context("default"):
        fig = st.pl.gene_correlation(adata, figsize=(6, 3))
        check_image(fig, "gene_correlation.png", tmp_path)
    plt.close("all")
