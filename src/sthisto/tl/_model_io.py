"""The on-disk format of a fitted M2TGLGO model: a folder of five files and a checksum manifest.

``attrs.json`` (format, version, config, preprocessing settings, selection),
``model.pt`` (weights, loaded with ``weights_only=True``), ``arrays.npz`` (feature and
target scalers), ``history.csv`` and ``manifest.json`` (size and sha256 of each of the
others). :func:`load_model` checks the manifest before it parses anything, so a truncated,
corrupt, foreign or older-format folder gets an error that names the file and says what to
do, never a parser's advice to load unsafely.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ._config import M2TGLGOConfig
from ._preprocessing import Preprocessing

FORMAT = 2
FILES = {"weights": "model.pt", "attrs": "attrs.json", "arrays": "arrays.npz", "history": "history.csv"}
MANIFEST = "manifest.json"
_OLD_FORMAT_FILES = ("scalers.npz",)  # written by format 1 (sthisto 0.1.0 before the config)


class ModelFileError(ValueError):
    """A saved model folder that cannot be loaded (missing, corrupt, foreign or older files)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_model(model, path: Path, *, overwrite: bool = False) -> None:
    """Write ``model`` to ``path`` (see the module doc); all files appear at once."""
    import torch

    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file; give a folder to save the model in.")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True to replace it.")
    attrs = {
        "format": FORMAT,
        "sthisto_version": model.version,
        "config": model.config.to_dict(),
        "preprocessing": model.preprocessing.attrs(),
        "n_members": len(model.module.members),
        "selection": model.selection,
    }
    if path.exists() and any(path.iterdir()) and not _is_saved_model(path):
        raise FileExistsError(f"{path} holds files that are not a saved sthisto model; overwrite=True only "
                              "replaces a saved model. Choose another folder.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        state = {k: v.detach().cpu() for k, v in model.module.state_dict().items()}
        torch.save(state, tmp / FILES["weights"])
        (tmp / FILES["attrs"]).write_text(json.dumps(attrs, indent=1))
        np.savez(tmp / FILES["arrays"], **model.preprocessing.arrays())
        model.history.to_csv(tmp / FILES["history"], index=False)
        manifest = {"format": FORMAT, "files": {
            name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in FILES.values()
        }}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _is_saved_model(path: Path) -> bool:
    names = {p.name for p in path.iterdir()}
    return MANIFEST in names or FILES["attrs"] in names


def _read_manifest(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: not a saved sthisto M2TGLGO model (give the folder "
                                "that M2TGLGO.save wrote).")
    if not path.is_dir():
        raise ModelFileError(f"{path} is a file, not a saved sthisto M2TGLGO model (give the folder that "
                             "M2TGLGO.save wrote).")
    mpath = path / MANIFEST
    if not mpath.exists():
        if any((path / f).exists() for f in _OLD_FORMAT_FILES):
            raise ModelFileError(f"{path} holds a model saved by an older sthisto (format 1, no manifest); "
                                 "retrain it with this version.")
        raise ModelFileError(f"{mpath} not found: {path} is not a saved sthisto M2TGLGO model.")
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
        fmt = manifest["format"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ModelFileError(f"{mpath} is damaged ({type(err).__name__}): the model folder cannot be "
                             "trusted; save the model again.") from err
    if fmt != FORMAT:
        raise ModelFileError(f"{path} was saved in model format {fmt!r}; this sthisto reads format {FORMAT} "
                             "(retrain the model, or load it with the sthisto version that saved it).")
    for name in FILES.values():
        f = path / name
        entry = files.get(name)
        if entry is None or not f.exists():
            raise ModelFileError(f"{f} is missing from the saved model; save the model again.")
        size = f.stat().st_size
        if size != entry.get("bytes"):
            raise ModelFileError(f"{f} is truncated or changed: {size} bytes, the manifest says "
                                 f"{entry.get('bytes')}; save the model again.")
        if _sha256(f) != entry.get("sha256"):
            raise ModelFileError(f"{f} is corrupt: its sha256 differs from the manifest; save the model again.")
    return manifest


def load_model(cls, path: Path, *, device: str | None = "cpu"):
    """Read a folder written by :func:`save_model` into a ``cls`` (an :class:`M2TGLGO`)."""
    import torch

    from sthisto._device import resolve_device

    from ._model import build_ensemble

    _read_manifest(path)  # from here on every file is exactly what save wrote
    attrs = json.loads((path / FILES["attrs"]).read_text())
    where = str(path / FILES["attrs"])
    try:
        config = M2TGLGOConfig.from_dict(attrs["config"], where=where)
        with np.load(path / FILES["arrays"], allow_pickle=False) as npz:
            preprocessing = Preprocessing.from_saved(attrs["preprocessing"], dict(npz), where=where)
        n_members = int(attrs["n_members"])
    except KeyError as err:
        raise ModelFileError(f"{where} lacks the entry {err}; save the model again.") from err
    state = torch.load(io.BytesIO((path / FILES["weights"]).read_bytes()), map_location="cpu", weights_only=True)
    prior = {}
    if config.use_go:
        try:
            prior = {"gene_embeddings": state["members.0.gene_head.gene_embeddings"],
                     "gene_edge_index": state["members.0.gene_head.gene_edge_index"]}
        except KeyError as err:
            raise ModelFileError(f"{path / FILES['weights']} lacks the GO prior {err} its config asks for.") from err
    try:
        module = build_ensemble(config, preprocessing, n_members, **prior)
        module.load_state_dict(state)
    except (RuntimeError, ValueError) as err:
        raise ModelFileError(
            f"the weights in {path} do not match the saved feature schema / genes "
            f"({preprocessing.feature_dims}, {len(preprocessing.genes)} genes): {err}"
        ) from err
    hist_path = path / FILES["history"]
    history = pd.read_csv(hist_path) if hist_path.stat().st_size > 1 else pd.DataFrame()
    model = cls(module, config=config, preprocessing=preprocessing, history=history,
                selection=attrs.get("selection", {}), version=attrs["sthisto_version"])
    model.module.to(resolve_device(device))
    model.module.eval()
    return model
