import numpy as np
import pytest

import sthisto as st


@pytest.fixture(scope="module")
def demo():
    return st.datasets.her2st_demo()


def test_three_sections_with_images(demo):
    assert [a.uns["spatial"].keys() for a in demo] and [next(iter(a.uns["spatial"])) for a in demo] == [
        "C2", "C3", "C4"]
    panel = ["ERBB2", "GNAS", "FN1", "MYL9"]
    for adata in demo:
        assert 150 < adata.n_obs < 200
        assert adata.n_vars > 15000
        assert set(panel) <= set(adata.var_names)
        sf = adata.uns["spatial"][adata.obs["section"].iloc[0]]["scalefactors"]
        assert 0.6 < sf["microns_per_pixel"] < 0.8
        img = st._image.fullres_image(adata)
        xy = adata.obsm["spatial"]
        assert (xy >= 0).all() and (xy[:, 0] < img.shape[1]).all() and (xy[:, 1] < img.shape[0]).all()
        # the tissue under each spot centre is kept (not blanked)
        centre = img[xy[:, 1].astype(int), xy[:, 0].astype(int)]
        assert (centre.min(axis=1) < 250).mean() > 0.9


def test_unknown_section():
    with pytest.raises(ValueError, match="unknown demo sections"):
        st.datasets.her2st_demo(["Z1"])


def test_counts_are_raw_integers(demo):
    x = demo[0].X
    assert np.all(x.data == np.round(x.data)) and x.data.min() >= 0


def test_panel_is_in_every_demo_section(demo):
    panel = st.datasets.her2st_panel()
    assert len(panel) == len(set(panel)) == 785
    for adata in demo:
        assert set(panel) <= set(adata.var_names)


def test_pretrained_gene2vec_covers_the_panel(demo):
    adata = demo[0][:, st.datasets.her2st_panel()].copy()
    st.pp.gene_embeddings(adata, path=st.datasets.her2st_gene2vec())
    vectors = adata.varm["sthisto_gene2vec"]
    assert vectors.shape == (785, 200)
    assert not adata.var["sthisto_gene2vec_missing"].any()
    assert np.isfinite(vectors).all() and np.linalg.norm(vectors, axis=1).min() > 0
