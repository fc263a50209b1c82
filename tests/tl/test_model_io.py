import json

import numpy as np
import pandas as pd
import pytest

import sthisto as st

from ._model_data import FAST, model_sections


@pytest.fixture(scope="module")
def model():
    return st.tl.fit(model_sections((0, 1)), val_adata=model_sections((2,))[0], **FAST)


@pytest.mark.parametrize("use_go", [True, False])
def test_save_load_predict_identical(tmp_path, use_go):
    m = st.tl.fit(model_sections((0, 1)), use_go=use_go, **FAST)
    (test,) = model_sections((2,))
    m.save(tmp_path / "m")
    back = st.tl.M2TGLGO.load(tmp_path / "m")
    np.testing.assert_array_equal(m.predict(test), back.predict(test))
    assert back.genes == m.genes and back.modalities == m.modalities
    assert back.feature_dims == m.feature_dims and back.config == m.config
    assert back.selection == m.selection and back.preprocessing.feature_columns == m.preprocessing.feature_columns
    for k in m.scalers:
        np.testing.assert_array_equal(back.scalers[k][0], m.scalers[k][0])
    assert back.version == st.__version__


def test_history_round_trips(model, tmp_path):
    model.save(tmp_path / "m")
    back = st.tl.M2TGLGO.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.history, model.history, check_exact=False, rtol=1e-12)
    assert list(back.history.columns) == list(model.history.columns)


def test_save_refuses_to_overwrite(model, tmp_path):
    model.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True)


def _rewrite(folder, name, data: bytes):
    """Replace a file of a saved model and re-sign the manifest (a consistent but wrong folder)."""
    import hashlib

    (folder / name).write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_load_rejects_other_feature_schema(model, tmp_path):
    model.save(tmp_path / "m")
    attrs = json.loads((tmp_path / "m" / "attrs.json").read_text())
    attrs["preprocessing"]["feature_dims"]["deep"] = 99
    _rewrite(tmp_path / "m", "attrs.json", json.dumps(attrs).encode())
    with pytest.raises(ValueError, match="deep has 99 features"):
        st.tl.M2TGLGO.load(tmp_path / "m")


def test_load_rejects_weights_of_another_schema(model, tmp_path):
    other = st.tl.fit(model_sections((0, 1)), modalities=("deep", "morphology"), **FAST)
    other.save(tmp_path / "other")
    model.save(tmp_path / "m")
    # weights of a 2-modality model under the 3-modality attrs
    _rewrite(tmp_path / "m", "model.pt", (tmp_path / "other" / "model.pt").read_bytes())
    with pytest.raises(ValueError, match="do not match"):
        st.tl.M2TGLGO.load(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="not a saved"):
        st.tl.M2TGLGO.load(tmp_path / "nothing")


@pytest.mark.parametrize("damage", ["truncate", "random_bytes", "flip_byte", "delete"])
@pytest.mark.parametrize("name", ["model.pt", "arrays.npz", "attrs.json", "history.csv"])
def test_damaged_files_are_named_and_never_loaded(model, tmp_path, name, damage):
    model.save(tmp_path / "m")
    f = tmp_path / "m" / name
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "random_bytes":
        f.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif damage == "flip_byte":
        f.write_bytes(data[:10] + bytes([data[10] ^ 0xFF]) + data[11:])
    else:
        f.unlink()
    with pytest.raises(ValueError, match=name.replace(".", r"\.")) as err:
        st.tl.M2TGLGO.load(tmp_path / "m")
    assert "weights_only" not in str(err.value) and "allow_pickle" not in str(err.value)
    assert "save the model again" in str(err.value)


def test_missing_or_older_config_fields_are_named(model, tmp_path):
    model.save(tmp_path / "m")
    attrs = json.loads((tmp_path / "m" / "attrs.json").read_text())
    del attrs["config"]["dropout"]
    _rewrite(tmp_path / "m", "attrs.json", json.dumps(attrs).encode())
    with pytest.raises(ValueError, match=r"\['dropout'\] are missing.*older sthisto"):
        st.tl.M2TGLGO.load(tmp_path / "m")
    attrs["config"]["dropout"], attrs["config"]["from_the_future"] = 0.1, 1
    _rewrite(tmp_path / "m", "attrs.json", json.dumps(attrs).encode())
    with pytest.raises(ValueError, match="unknown M2TGLGO settings.*from_the_future"):
        st.tl.M2TGLGO.load(tmp_path / "m")


def test_older_format_and_foreign_folders(model, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.pt", "attrs.json", "scalers.npz", "history.csv"):  # the format-1 layout
        (old / name).write_bytes(b"x")
    with pytest.raises(ValueError, match="older sthisto .*format 1"):
        st.tl.M2TGLGO.load(old)
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest["format"] = 99
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="format 99"):
        st.tl.M2TGLGO.load(tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is damaged"):
        st.tl.M2TGLGO.load(tmp_path / "m")
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a saved sthisto model"):
        model.save(user, overwrite=True)
    assert (user / "notes.txt").read_text() == "mine"  # a user's folder is never deleted


def test_loaded_model_rejects_section_with_other_features(model, tmp_path):
    model.save(tmp_path / "m")
    back = st.tl.M2TGLGO.load(tmp_path / "m")
    (a,) = model_sections((2,))
    a.obsm["sthisto_deep"] = np.hstack([a.obsm["sthisto_deep"], a.obsm["sthisto_deep"]])
    with pytest.raises(ValueError, match="48 columns.*24"):
        st.tl.predict(a, back)


def test_repr(model):
    text = repr(model)
    assert text.startswith("M2TGLGO(genes=20")
    assert "deep=24" in text and "morphology=6" in text and "topology=3" in text
    assert "epochs=3" in text and "members=1" in text and "device=cpu" in text and st.__version__ in text
    ablated = st.tl.fit(model_sections((0,)), use_go=False, use_inter=False, **FAST)
    assert "use_inter" in repr(ablated) and "use_go" in repr(ablated)


def test_to_device_and_dtypes(model, device):
    import torch

    model.to(device)
    assert model.device.type == device.split(":")[0]
    assert all(p.dtype == torch.float32 for p in model.module.parameters())
    assert all(b.device.type == model.device.type for b in model.module.buffers())
    (a,) = model_sections((2,))
    pred = model.predict(a)
    assert isinstance(pred, np.ndarray) and pred.dtype == np.float32
    model.to("cpu")
    np.testing.assert_allclose(model.predict(a), pred, rtol=1e-4, atol=1e-5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            model.to("cuda")
        assert model.device.type == "cpu"


def test_load_onto_device(model, tmp_path, device):
    model.save(tmp_path / "m")
    back = st.tl.M2TGLGO.load(tmp_path / "m", device=device)
    assert back.device.type == device.split(":")[0]
    assert not back.module.training
