import logging

import numpy as np
import pytest

import sthisto as st

torch = pytest.importorskip("torch")
nn = torch.nn

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x))).flatten(1)


@pytest.fixture
def small(synthetic_adata):
    return synthetic_adata[:20].copy()


def _tiny(seed: int) -> Tiny:
    torch.manual_seed(seed)
    return Tiny()


def test_module_file_and_state_dict_give_the_module_features(small, tmp_path):
    tiny = _tiny(0)
    st.pp.image_features(small, model=tiny, patch_px=32, batch_size=8)
    ref = small.obsm["sthisto_deep"].copy()
    assert ref.shape == (small.n_obs, 4) and ref.dtype == np.float32
    assert np.abs(ref).sum() > 0

    torch.jit.script(tiny).save(str(tmp_path / "tiny_script.pt"))
    st.pp.image_features(small, model=str(tmp_path / "tiny_script.pt"), patch_px=32, batch_size=8)
    np.testing.assert_array_equal(small.obsm["sthisto_deep"], ref)

    torch.save(tiny.state_dict(), tmp_path / "tiny_state.pt")
    other = _tiny(1)
    st.pp.image_features(small, model=other, weights=tmp_path / "tiny_state.pt", patch_px=32, batch_size=7)
    np.testing.assert_array_equal(small.obsm["sthisto_deep"], ref)  # batch size does not matter


def test_callable_sees_normalised_patches_in_obs_order(small):
    st.pp.image_features(small, model=lambda x: x.mean(dim=(2, 3)), patch_px=16, key_added="mean_rgb")
    expected = np.zeros((small.n_obs, 3))
    for b in st.pp.patches(small, patch_px=16):
        expected[b.index] = ((b.images / 255.0 - MEAN) / STD).mean(axis=(1, 2))
    np.testing.assert_allclose(small.obsm["mean_rgb"], expected, rtol=1e-5, atol=1e-5)
    assert small.uns["mean_rgb"]["params"]["weights"] == "callable"
    assert small.obs["mean_rgb_border"].dtype == bool


def test_tta_averages_views(small):
    def left_half(x):  # not flip invariant
        return x[..., : x.shape[-1] // 2].mean(dim=(2, 3))

    st.pp.image_features(small, model=left_half, patch_px=16, tta="flip", normalize=False, key_added="tta")
    expected = np.zeros((small.n_obs, 3))
    for b in st.pp.patches(small, patch_px=16):
        views = [b.images, b.images[:, :, ::-1], b.images[:, ::-1]]
        expected[b.index] = np.mean([v[:, :, :8].mean(axis=(1, 2)) / 255.0 for v in views], axis=0)
    np.testing.assert_allclose(small.obsm["tta"], expected, rtol=1e-5, atol=1e-6)
    st.pp.image_features(small, model=left_half, patch_px=16, normalize=False, key_added="plain")
    assert not np.allclose(small.obsm["plain"], small.obsm["tta"])
    with pytest.raises(ValueError, match="tta"):
        st.pp.image_features(small, model=left_half, tta="spin")


def test_random_weights_are_seeded_and_warned(small, caplog):
    small = small[:6].copy()
    with caplog.at_level(logging.WARNING, logger="sthisto"):
        st.pp.image_features(small, model="resnet18", weights=None, patch_px=32, seed=3, key_added="a")
    assert "randomly initialised" in caplog.text
    st.pp.image_features(small, model="resnet18", weights=None, patch_px=32, seed=3, key_added="b")
    st.pp.image_features(small, model="resnet18", weights=None, patch_px=32, seed=4, key_added="c")
    assert small.obsm["a"].shape == (6, 512)
    np.testing.assert_array_equal(small.obsm["a"], small.obsm["b"])
    assert not np.allclose(small.obsm["a"], small.obsm["c"])
    assert small.uns["a"]["params"]["weights"] == "random"


def test_builtin_resnets_have_torchvision_layouts():
    from sthisto.pp._deep import resnet18, resnet50

    # parameter counts of torchvision's resnet18/resnet50 (ImageNet heads included)
    assert sum(p.numel() for p in resnet18().parameters()) == 11_689_512
    assert sum(p.numel() for p in resnet50().parameters()) == 25_557_032
    keys = resnet50().state_dict().keys()
    for k in ("conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_var", "fc.bias"):
        assert k in keys


def test_default_weights_come_from_the_torch_hub_cache(small, tmp_path, monkeypatch):
    from sthisto.pp._deep import WEIGHT_URLS, resnet18

    small = small[:5].copy()
    torch.manual_seed(123)
    pretrained = resnet18()
    ckpt = tmp_path / "torch_home" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(pretrained.state_dict(), ckpt / WEIGHT_URLS["resnet18"].rsplit("/", 1)[1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    st.pp.image_features(small, model="resnet18", weights="default", patch_px=32, key_added="hub")
    pretrained.fc = nn.Identity()
    st.pp.image_features(small, model=pretrained, patch_px=32, key_added="module")
    np.testing.assert_allclose(small.obsm["hub"], small.obsm["module"], rtol=1e-6, atol=1e-6)
    assert small.uns["hub"]["params"]["weights"] == "default"
    st.pp.image_features(small, model="resnet18", weights=str(ckpt / "resnet18-f37072fd.pth"), patch_px=32, key_added="file")
    np.testing.assert_array_equal(small.obsm["file"], small.obsm["hub"])


def test_pca_border_params_and_copy(synthetic_adata):
    adata = synthetic_adata[:30].copy()
    adata.obsm["spatial"][0] = [2.0, 2.0]
    out = st.pp.image_features(adata, model=_tiny(0), patch_px=24, n_pcs=3, copy=True)
    assert "sthisto_deep" not in adata.obsm and out is not None
    assert out.obsm["sthisto_deep_pca"].shape == (30, 3)
    assert out.obs["sthisto_deep_border"].iloc[0] and out.obs["sthisto_deep_border"].sum() == 1
    p = out.uns["sthisto_deep"]["params"]
    assert p["patch_um"] == 55.0 and p["patch_px"] == 24 and p["n_border"] == 1 and p["n_features"] == 4
    ratio = out.uns["sthisto_deep"]["pca"]["variance_ratio"]
    assert ratio.shape == (3,) and np.all(np.diff(ratio) <= 0)
    with pytest.raises(ValueError, match="n_pcs"):
        st.pp.image_features(adata, model=_tiny(0), patch_px=24, n_pcs=99)


def test_hires_only_section(synthetic_adata):
    adata = synthetic_adata[:10].copy()
    del adata.uns["spatial"]["synthetic"]["images"]["fullres"]
    st.pp.image_features(adata, model=lambda x: x.mean(dim=(2, 3)), patch_px=16)
    p = adata.uns["sthisto_deep"]["params"]
    assert p["image_scale"] == 0.5 and p["patch_image_px"] == pytest.approx(27.5)


def test_bad_input_gives_clear_errors(small, tmp_path):
    with pytest.raises(ValueError, match="n_features"):
        st.pp.image_features(small, model=lambda x: x[:, :, :2, :2], patch_px=16)
    with pytest.raises(ValueError, match="shape"):
        st.pp.image_features(small, model=lambda x: x.mean(), patch_px=16)
    with pytest.raises(ValueError, match="unknown model"):
        st.pp.image_features(small, model="resnet-9000")
    with pytest.raises(FileNotFoundError):
        st.pp.image_features(small, model="resnet18", weights="/nonexistent/w.pth")
    torch.save(_tiny(0).state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(ValueError, match="do not fit"):
        st.pp.image_features(small, model="resnet18", weights=tmp_path / "tiny.pt", patch_px=32)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            st.pp.image_features(small, model=_tiny(0), device="cuda")
    bad = small.copy()
    bad.obsm["spatial"][3] = [-500.0, 10.0]
    with pytest.raises(ValueError, match="outside"):
        st.pp.image_features(bad, model=_tiny(0))
    img = small.uns["spatial"]["synthetic"]["images"]["fullres"]
    small.uns["spatial"]["synthetic"]["images"]["fullres"] = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    with pytest.raises(ValueError, match="alpha"):
        st.pp.image_features(small, model=_tiny(0))


def test_device_option_runs_on_the_requested_device(small, device):
    st.pp.image_features(small, model=_tiny(0), patch_px=32, device=device, amp=True)
    assert small.uns["sthisto_deep"]["params"]["device"].startswith(device)
