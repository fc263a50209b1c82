import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from skimage.color import rgb2hed
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

import sthisto as st
from sthisto.pp._texture import GLCM_PROPS, feature_names, grey, texture_features


@pytest.fixture(scope="module")
def patches_and_features(_synthetic_cache):
    batch = next(iter(st.pp.patches(_synthetic_cache[0], patch_px=48, batch_size=6)))
    return batch.images, texture_features(batch.images)


def _cols(prefix):
    names = feature_names()
    return [i for i, n in enumerate(names) if n.startswith(prefix)]


def test_glcm_matches_skimage(patches_and_features):
    images, feats = patches_and_features
    angles = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
    for k, g in enumerate(grey(images)):
        m = graycomatrix(g // 16, [1, 2, 4], angles, levels=16, symmetric=True, normed=True)
        ref = [graycoprops(m, p)[d].mean() for d in range(3) for p in GLCM_PROPS]
        np.testing.assert_allclose(feats[k, _cols("glcm_")], ref, rtol=1e-5, atol=1e-6)


def test_lbp_matches_skimage(patches_and_features):
    images, feats = patches_and_features
    for k, g in enumerate(grey(images)):
        codes = local_binary_pattern(g, 8, 1, method="uniform")[1:-1, 1:-1].astype(int)
        ref = np.bincount(codes.ravel(), minlength=10) / codes.size
        np.testing.assert_allclose(feats[k, _cols("lbp_")], ref, atol=1e-6)


def test_colour_and_gradient_statistics(patches_and_features):
    images, feats = patches_and_features
    names = feature_names()
    col = {n: i for i, n in enumerate(names)}
    for k, img in enumerate(images):
        r = img[..., 0].astype(float)
        assert feats[k, col["rgb_R_mean"]] == pytest.approx(r.mean(), rel=1e-5)
        assert feats[k, col["rgb_R_q50"]] == pytest.approx(np.median(r), rel=1e-5)
        hist = feats[k, _cols("rgb_G_hist")]
        assert hist.sum() == pytest.approx(1.0) and hist[int(np.median(img[..., 1]) // 32)] > 0
        h = rgb2hed(img)[..., 0]
        assert feats[k, col["hed_H_mean"]] == pytest.approx(h.mean(), rel=1e-4)
        assert feats[k, col["hed_H_std"]] == pytest.approx(h.std(), rel=1e-4)
        g = grey(img[None])[0].astype(float) / 255
        mag = np.hypot(ndimage.sobel(g, axis=1), ndimage.sobel(g, axis=0))[1:-1, 1:-1]
        assert feats[k, col["grad_mean"]] == pytest.approx(mag.mean(), rel=1e-5)
        assert feats[k, col["grad_std"]] == pytest.approx(mag.std(), rel=1e-4)


def test_texture_is_the_fourth_modality_and_tracks_nuclei(synthetic_adata):
    st.pp.image_features(synthetic_adata, model="texture", patch_px=64)
    feats = synthetic_adata.obsm["sthisto_texture"]
    assert isinstance(feats, pd.DataFrame) and list(feats.columns) == feature_names()
    assert (feats.index == synthetic_adata.obs_names).all()
    assert "sthisto_texture" in st._constants.MODALITY_KEYS.values()
    assert synthetic_adata.uns["sthisto_texture"]["params"]["model"] == "texture"
    assert "sthisto_deep" not in synthetic_adata.obsm
    # hematoxylin (nuclei) content follows the planted nucleus density
    density = synthetic_adata.uns["sthisto_synthetic"]["latents"]["density"]
    r = np.corrcoef(feats["hed_H_mean"], density)[0, 1]
    assert r > 0.5


def test_texture_rejects_bad_batches():
    with pytest.raises(ValueError, match="uint8"):
        texture_features(np.zeros((2, 8, 8, 3), dtype=np.float32))
