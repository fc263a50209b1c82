"""Real timm / torchvision / Hugging Face encoders in pp.image_features, on weights the tests make.

Marked ``encoders``: they run wherever timm (and torchvision) import beside torch and skip
elsewhere. PyPI's torchvision does not import beside the project's CPU torch 2.13 build, so
CI skips them; run them in a side environment::

    python3 -m venv /tmp/timm && . /tmp/timm/bin/activate
    pip install torch==2.14.1 torchvision==0.29.1 && pip install timm safetensors huggingface_hub
    pip install -e ".[test]" && python -m pytest tests/pp/test_encoders.py -m encoders -v
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import sthisto as st

torch = pytest.importorskip("torch")
try:
    import safetensors.torch as safetensors_torch
    import timm
except ImportError:
    timm = safetensors_torch = None
needs_timm = pytest.mark.skipif(timm is None, reason="could not import timm / safetensors")
ARCH = "vit_tiny_patch16_224"


@pytest.mark.skipif(timm is not None, reason="timm is installed: the real hub tests below cover this")
@pytest.mark.parametrize("name", ["hf-hub:MahmoodLab/uni", "timm/vit_small_patch16_224.augreg_in21k"])
def test_hub_names_are_model_names_not_file_paths(name):
    from sthisto.pp._deep import resolve_model

    with pytest.raises(ImportError, match="needs timm"):  # not "model file not found"
        resolve_model(name, "default", seed=0)


def _patches(adata, patch_px=224):
    batches = list(st.pp.patches(adata, patch_px=patch_px, batch_size=512))
    index = np.concatenate([b.index for b in batches])
    images = np.concatenate([b.images for b in batches])
    return images[np.argsort(index)]


def _reference(module, images, mean, std):
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.inference_mode():
        return module.eval()(x).numpy()


@pytest.fixture
def small_section(synthetic_adata):
    return synthetic_adata[:24].copy()


@pytest.mark.encoders
@needs_timm
def test_timm_vit_with_safetensors_weights(small_section, tmp_path):
    torch.manual_seed(123)
    module = timm.create_model(ARCH, pretrained=False, num_classes=0)
    path = tmp_path / "vit_tiny.safetensors"
    safetensors_torch.save_file(module.state_dict(), str(path))
    st.pp.image_features(small_section, model=ARCH, weights=str(path), batch_size=8, seed=0)
    feats = small_section.obsm["sthisto_deep"]
    cfg = timm.data.resolve_data_config({}, model=module)
    ref = _reference(module, _patches(small_section), cfg["mean"], cfg["std"])
    assert feats.shape == (small_section.n_obs, 192)
    np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-5)
    params = small_section.uns["sthisto_deep"]["params"]
    assert params["model"] == f"timm:{ARCH}" and params["weights"] == str(path)
    # the weights were applied: a seeded random init gives other features
    st.pp.image_features(small_section, model=ARCH, weights=None, batch_size=8, seed=0, key_added="random")
    assert not np.allclose(small_section.obsm["random"], feats)


def _fake_hub_cache(root, repo_id, module):
    """A Hugging Face hub cache holding ``repo_id`` as timm's push_to_hf_hub would publish it."""
    from timm.models import save_for_hf

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_for_hf(module, str(snapshot), safe_serialization=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.mark.encoders
@needs_timm
def test_hf_hub_name_loads_from_a_local_offline_cache(small_section, tmp_path):
    torch.manual_seed(7)
    module = timm.create_model(ARCH, pretrained=False, num_classes=0)
    snapshot = _fake_hub_cache(tmp_path / "hub", "sthisto-test/tiny-vit", module)
    assert json.loads((snapshot / "config.json").read_text())["architecture"] == ARCH
    small_section.write_h5ad(tmp_path / "section.h5ad")
    script = textwrap.dedent(f"""
        import numpy as np, anndata as ad, sthisto as st
        a = ad.read_h5ad({str(tmp_path / 'section.h5ad')!r})
        st.pp.image_features(a, model="hf-hub:sthisto-test/tiny-vit", weights="default", batch_size=8)
        np.save({str(tmp_path / 'feats.npy')!r}, a.obsm["sthisto_deep"])
        try:
            st.pp.image_features(a, model="hf-hub:sthisto-test/not-cached", weights="default")
        except OSError as err:
            print("ERROR:", err)
    """)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "STHISTO_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ERROR: cannot create timm model 'hf-hub:sthisto-test/not-cached'" in out.stdout
    assert "HF_HUB_OFFLINE" in out.stdout
    feats = np.load(tmp_path / "feats.npy")
    cfg = timm.data.resolve_data_config({}, model=module)
    np.testing.assert_allclose(feats, _reference(module, _patches(small_section), cfg["mean"], cfg["std"]),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.encoders
@needs_timm
def test_torchvision_model_with_a_state_dict_file(small_section, tmp_path):
    tv = pytest.importorskip("torchvision")
    from torchvision import models

    torch.manual_seed(3)
    module = models.get_model("mobilenet_v3_small", weights=None)
    path = tmp_path / "mnv3.pth"
    torch.save(module.state_dict(), path)
    st.pp.image_features(small_section, model="mobilenet_v3_small", weights=str(path), batch_size=8)
    module.classifier = torch.nn.Identity()
    ref = _reference(module, _patches(small_section), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    np.testing.assert_allclose(small_section.obsm["sthisto_deep"], ref, rtol=1e-4, atol=1e-5)
    assert small_section.uns["sthisto_deep"]["params"]["model"] == "torchvision:mobilenet_v3_small"
    assert tv.__version__
