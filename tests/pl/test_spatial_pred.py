import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import pearsonr  # noqa: E402

import sthisto as st  # noqa: E402
from sthisto._expression import log_normalized  # noqa: E402
from sthisto.pl._spatial import _spatial_pred_data  # noqa: E402

from ._compare import check_image  # noqa: E402


@pytest.fixture
def adata(synthetic_adata):
    a = synthetic_adata
    rng = np.random.default_rng(0)
    y = log_normalized(a)
    pred = y + 0.5 * rng.normal(size=a.shape)
    pred[:, 10:] = np.nan  # genes the model does not predict
    a.layers["sthisto_pred"] = pred
    return a


def test_prepared_data(adata):
    genes = ["GENE0001", "GENE0002"]
    d = _spatial_pred_data(adata, genes)
    sf = adata.uns["spatial"]["synthetic"]["scalefactors"]
    s = sf["tissue_hires_scalef"]
    np.testing.assert_allclose(d["xy"], adata.obsm["spatial"] * s)
    assert d["diameter"] == pytest.approx(sf["spot_diameter_fullres"] * s)
    assert d["image"].shape == adata.uns["spatial"]["synthetic"]["images"]["hires"].shape
    y = log_normalized(adata, genes)
    for j, g in enumerate(d["genes"]):
        np.testing.assert_allclose(g["observed"], y[:, j])
        np.testing.assert_allclose(g["predicted"], adata.layers["sthisto_pred"][:, j + 1])
        both = np.concatenate([g["observed"], g["predicted"]])
        assert (g["vmin"], g["vmax"]) == (both.min(), both.max())  # one scale for both panels
        assert g["pcc"] == pytest.approx(pearsonr(y[:, j], g["predicted"])[0])


def test_without_image_and_errors(adata):
    d = _spatial_pred_data(adata, "GENE0003", img_key=None)
    assert d["image"] is None
    np.testing.assert_allclose(d["xy"], adata.obsm["spatial"])
    with pytest.raises(ValueError, match="no prediction"):
        _spatial_pred_data(adata, ["GENE0011"])
    with pytest.raises(KeyError, match="lowres"):
        _spatial_pred_data(adata, ["GENE0001"], img_key="lowres")


def test_renders_on_given_axes(adata):
    fig, axes = plt.subplots(1, 2)
    out = st.pl.spatial_pred(adata, "GENE0001", ax=axes)
    assert out is fig
    coll = axes[1].collections[0]
    np.testing.assert_allclose(coll.get_array(), adata.layers["sthisto_pred"][:, 1])
    assert coll.norm.vmin == axes[0].collections[0].norm.vmin
    assert "PCC=" in axes[1].get_title()
    with pytest.raises(ValueError, match="4 axes"):
        st.pl.spatial_pred(adata, ["GENE0001", "GENE0002"], ax=axes)
    plt.close("all")


def test_image(adata, tmp_path):
    with plt.style.context("default"):
        fig = st.pl.spatial_pred(adata, ["GENE0001"], figsize=(6, 2.6))
        check_image(fig, "spatial_pred.png", tmp_path)
    plt.close("all")
