"""Bad input to image_features / patches and damaged or foreign weights (issue 14, cases 5, 8, 10)."""

import numpy as np
import pytest
import torch

import sthisto as st
from sthisto._errors import FileFormatError, InputError
from sthisto.pp._deep import resnet18, resnet50
from sthisto.pp._weights import architecture
from tests._unchanged import assert_unchanged


@pytest.fixture
def small(synthetic_adata):
    return synthetic_adata[:12].copy()


def test_too_many_pcs_fails_before_anything_is_written(small):
    before = small.copy()
    with pytest.raises(InputError, match=r"^n_pcs must be an integer between 1 and 12, got 99\. To fix: at most "
                                         r"min\(n_spots, n_features\) principal components exist\.$"):
        st.pp.image_features(small, model="texture", patch_px=16, n_pcs=99)
    assert_unchanged(small, before)  # no obsm, no obs column, no uns

    def four(x):  # the width is known only after the model ran: still checked before the write
        return x.mean(dim=(2, 3)).repeat(1, 2)[:, :4]

    with pytest.raises(InputError, match=r"^n_pcs must be between 1 and min\(n_spots, n_features\) = 4, got 6\.$"):
        st.pp.image_features(small, model=four, patch_px=16, n_pcs=6)
    assert_unchanged(small, before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0\."),
        ({"batch_size": 2.5}, r"batch_size must be an integer >= 1, got 2\.5\."),
        ({"patch_px": "224"}, r"patch_px must be an integer >= 8, got '224'\."),
        ({"patch_px": 10**6}, r"a batch of 64 patches of 1000000×1000000 px would need .* GiB of memory, more than "
                              r"this machine has .* To fix: lower batch_size or patch_px\.$"),
        ({"patch_um": 1e9}, r"patch_um=1e\+09 µm spans 1000000000 px, more than the whole 1250×979 px image"),
        ({"patch_um": "55"}, r"patch_um must be a positive finite number, got '55'\."),
        ({"tta": "spin"}, r"tta must be one of \(None, 'flip', 'rot90', 'd4'\), got 'spin'\.$"),
        ({"key_added": ""}, r"key_added must be a non-empty string \(an AnnData key\), got ''\.$"),
    ],
)
def test_arguments_are_checked_before_any_patch_is_read(small, kwargs, message):
    before = small.copy()
    with pytest.raises(InputError, match=f"^{message}"):
        st.pp.image_features(small, model="texture", **kwargs)
    assert_unchanged(small, before)


def test_patches_checks_its_arguments_when_called_not_when_iterated(small):
    for kwargs, message in [({"batch_size": 0}, "batch_size must be an integer >= 1, got 0."),
                            ({"tile_px": 0}, "tile_px must be an integer >= 1, got 0."),
                            ({"patch_px": 2.5}, "patch_px must be an integer >= 1, got 2.5.")]:
        with pytest.raises(InputError) as info:
            st.pp.patches(small, **kwargs)  # no next(): the generator is not started
        assert str(info.value).startswith(message)


def _shaped_like(module) -> dict:
    """A state dict with ``module``'s keys and shapes that costs a few bytes (expanded zeros)."""
    with torch.device("meta"):
        state = module().state_dict()
    return {k: torch.zeros(1).expand(v.shape) if v.ndim else torch.zeros(()) for k, v in state.items()}


def test_weights_of_another_architecture_name_the_file_and_both_architectures(small, tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(_shaped_like(resnet50), path)
    before = small.copy()
    with pytest.raises(InputError) as info:
        st.pp.image_features(small, model="resnet18", weights=str(path), patch_px=32)
    assert str(info.value) == (
        f"the weights in file {path} do not fit model 'resnet18', ResNet-18 (BasicBlock blocks 2-2-2-2); the file "
        "holds ResNet-50 (Bottleneck blocks 3-4-6-3) weights: 24 tensors have other shapes (e.g. "
        "layer1.0.conv1.weight: (64, 64, 1, 1) in the file, (64, 64, 3, 3) in the model); 198 are not in the model "
        "(e.g. ['layer1.0.conv3.weight', 'layer1.0.bn3.weight', 'layer1.0.bn3.bias']). To fix: pass the "
        "architecture the weights belong to as model=, or weights of 'resnet18'."
    )
    assert_unchanged(small, before)


def test_architecture_is_read_from_the_keys():
    assert architecture(resnet18().state_dict()) == "ResNet-18 (BasicBlock blocks 2-2-2-2)"
    assert architecture(_shaped_like(resnet50)) == "ResNet-50 (Bottleneck blocks 3-4-6-3)"
    assert architecture({"blocks.0.attn.qkv.weight": torch.zeros(1)}) is None


def test_empty_truncated_and_foreign_weights_files(small, tmp_path):
    good = tmp_path / "good.pt"
    torch.save(resnet18().state_dict(), good)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:100_000])
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    expected = r"Expected a state dict saved with torch\.save \(\.pt, \.pth, \.bin, \.ckpt\) or a \.safetensors file\."
    cases = {
        "empty.pt": rf"^weights file .*empty\.pt: is empty \(0 bytes\)\. {expected} To fix: re-download or re-save",
        "truncated.pt": rf"^cannot read the weights file .*truncated\.pt: the parser raised RuntimeError\. {expected}",
        "random.pt": rf"^cannot read the weights file .*random\.pt: the parser raised _pickle\.UnpicklingError\. "
                     rf"{expected} To fix: check that the file is complete \(re-download it\) and holds model "
                     r"weights only: sthisto loads weights with weights_only=True and never unpickles",
        "list.pt": rf"^weights file .*list\.pt: does not hold a state dict \(got list\)\. {expected}",
    }
    before = small.copy()
    for name, message in cases.items():
        with pytest.raises(FileFormatError, match=message) as info:
            st.pp.image_features(small, model="resnet18", weights=str(tmp_path / name), patch_px=32)
        assert "weights_only=False" not in str(info.value)  # never the parser's advice to load unsafely
        assert info.value.__cause__ is not None or name in ("empty.pt", "list.pt")
    assert_unchanged(small, before)
    with pytest.raises(TypeError, match=r"^weights must be 'default', None or a path to a state-dict file, got int\.$"):
        st.pp.image_features(small, model="resnet18", weights=5)


def test_an_empty_module_file(small, tmp_path):
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"^cannot read the model file .*model\.pt: Ran out of input \[EOFError\]"):
        st.pp.image_features(small, model=str(tmp_path / "model.pt"))
