"""Extractors are parts: texture, deep and user extractors, each owning its options and key."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import sthisto as st
from sthisto.pp import DeepExtractor, Extractor, TextureExtractor


@dataclass(frozen=True)
class MeanColour(Extractor):
    """A numpy-only extractor with named columns and its own obsm key."""

    name: str = "mean_colour"
    key_added: str = "sthisto_colour"

    def prepare(self, *, seed):
        return lambda images: images.reshape(len(images), -1, 3).mean(axis=1).astype(np.float32)

    def columns(self):
        return ["R", "G", "B"]


@pytest.fixture
def small(synthetic_adata):
    return synthetic_adata[:12].copy()


def test_texture_by_name_or_instance(small):
    st.pp.image_features(small, model="texture", patch_px=32)
    by_name = small.obsm["sthisto_texture"].copy()
    st.pp.image_features(small, model=TextureExtractor(), patch_px=32, key_added="t2")
    pd.testing.assert_frame_equal(by_name, small.obsm["t2"])
    assert small.uns["sthisto_texture"]["params"]["weights"] == "none"
    assert "sthisto_deep" not in small.obsm


def test_options_belong_to_the_deep_extractor(small):
    with pytest.raises(ValueError, match="weights=, device= apply to deep models only"):
        st.pp.image_features(small, model="texture", weights=None, device="cpu")
    with pytest.raises(ValueError, match="set them on it"):
        st.pp.image_features(small, model=TextureExtractor(), amp=True)
    with pytest.raises(TypeError, match="wieghts"):
        st.pp.image_features(small, model="resnet18", wieghts=None)


def test_a_user_extractor_writes_its_own_key(small):
    st.pp.image_features(small, model=MeanColour(), patch_px=16)
    feats = small.obsm["sthisto_colour"]
    assert list(feats.columns) == ["R", "G", "B"] and (feats.index == small.obs_names).all()
    assert small.uns["sthisto_colour"]["params"]["model"] == "mean_colour"
    expected = np.zeros((small.n_obs, 3))
    for b in st.pp.patches(small, patch_px=16):
        expected[b.index] = b.images.reshape(len(b.images), -1, 3).mean(axis=1)
    np.testing.assert_allclose(feats.to_numpy(), expected, rtol=1e-6)


def test_deep_extractor_instance_equals_the_shorthand(small):
    pytest.importorskip("torch")
    st.pp.image_features(small, model="resnet18", weights=None, patch_px=32, seed=1, key_added="a")
    ext = DeepExtractor("resnet18", weights=None)
    st.pp.image_features(small, model=ext, patch_px=32, seed=1, key_added="b")
    np.testing.assert_array_equal(small.obsm["a"], small.obsm["b"])
    assert ext.name == "resnet18" and small.uns["b"]["params"]["weights"] == "random"
    assert ext.key_added == "sthisto_deep"


def test_a_wrong_extractor_output_is_named(small):
    @dataclass(frozen=True)
    class Flat(Extractor):
        name: str = "flat"
        key_added: str = "sthisto_flat"

        def prepare(self, *, seed):
            return lambda images: images.mean(axis=(1, 2, 3))  # (B,) instead of (B, D)

    with pytest.raises(ValueError, match="'flat' returned shape"):
        st.pp.image_features(small, model=Flat(), patch_px=16)
    assert "sthisto_flat" not in small.obsm
