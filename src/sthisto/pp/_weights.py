"""Weights files for the deep extractors: read safely, checked against the architecture.

A weights file is read with ``weights_only=True`` (or safetensors); an empty, truncated or
foreign file is an error naming it. Before anything is loaded every tensor is compared with
the model's, and a mismatch names the file, the model and, for a ResNet, the architecture
the file holds (ResNet-50 weights given to ``resnet18``).
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import torch
from torch import nn

from sthisto._errors import DEPENDENCY_ERRORS, InputError, file_format_error, reading
from sthisto._validate import existing_file

_WEIGHTS_FORMAT = "a state dict saved with torch.save (.pt, .pth, .bin, .ckpt) or a .safetensors file"
_WEIGHTS_FIX = ("check that the file is complete (re-download it) and holds model weights only: sthisto loads "
                "weights with weights_only=True and never unpickles other objects")
_HEADS = ("fc", "head", "classifier")


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (torch, weights only, or safetensors), checked.

    Raises a :class:`~sthisto._errors.FileFormatError` naming the file for an empty,
    truncated or foreign one, without repeating torch's advice to load it unsafely.
    """
    path = existing_file(path, "weights file")
    if path.stat().st_size == 0:
        raise file_format_error(path, "weights file", "is empty (0 bytes)", expected=_WEIGHTS_FORMAT,
                                fix="re-download or re-save the weights")
    # torch's own messages advise weights_only=False for a file it refused: never repeat that
    with reading(path, "weights file", expected=_WEIGHTS_FORMAT, fix=_WEIGHTS_FIX, detail=False,
                 errors=(*DEPENDENCY_ERRORS, RuntimeError, pickle.UnpicklingError)):
        if path.suffix == ".safetensors":  # timm / Hugging Face weights
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        kind = type(obj).__name__ if not isinstance(obj, dict) else "a dict that is not name → tensor"
        raise file_format_error(path, "weights file", f"does not hold a state dict (got {kind})",
                                expected=_WEIGHTS_FORMAT, fix="save model.state_dict(), not the model or a list")
    return {k.removeprefix("module."): v for k, v in obj.items()}


_RESNET_DEPTHS = {("BasicBlock", (2, 2, 2, 2)): 18, ("BasicBlock", (3, 4, 6, 3)): 34,
                  ("Bottleneck", (3, 4, 6, 3)): 50, ("Bottleneck", (3, 4, 23, 3)): 101,
                  ("Bottleneck", (3, 8, 36, 3)): 152}


def architecture(state: dict[str, Any]) -> str | None:
    """Name the ResNet a state dict belongs to from its keys (``"ResNet-50 (Bottleneck blocks 3-4-6-3)"``).

    Returns ``None`` for a state dict that is not a torchvision-layout ResNet.
    """
    blocks = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.") and k.endswith(".conv1.weight")})
                   for i in range(1, 5))
    if not all(blocks):
        return None
    kind = "Bottleneck" if "layer1.0.conv3.weight" in state else "BasicBlock"
    depth = _RESNET_DEPTHS.get((kind, blocks))
    layout = f"{kind} blocks {'-'.join(map(str, blocks))}"
    return f"ResNet-{depth} ({layout})" if depth else f"a ResNet with {layout}"


def apply_state_dict(module: nn.Module, state: dict[str, torch.Tensor], source: str, model: str = "the model") -> None:
    """Load ``state`` into ``module``, or raise naming ``source``, ``model`` and what the file holds.

    Every tensor is checked before anything is loaded; a classification head the feature
    extractor does not use is dropped.
    """
    own = module.state_dict()
    state = {k: v for k, v in state.items() if k in own or k.split(".")[0] not in _HEADS}
    missing = [k for k in own if k not in state and k.split(".")[0] not in _HEADS]
    unexpected = [k for k in state if k not in own]
    wrong = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        expected, found = architecture(own), architecture(state)
        problems = []
        if wrong:
            k, got, want = wrong[0]
            problems.append(f"{len(wrong)} tensors have other shapes (e.g. {k}: {got} in the file, {want} in the model)")
        if missing:
            problems.append(f"{len(missing)} of the model's tensors are missing (e.g. {missing[:3]})")
        if unexpected:
            problems.append(f"{len(unexpected)} are not in the model (e.g. {unexpected[:3]})")
        holds = f"; the file holds {found} weights" if found and found != expected else ""
        raise InputError(
            f"the weights {source} do not fit model {model!r}{f', {expected}' if expected else ''}{holds}: "
            f"{'; '.join(problems)}. To fix: pass the architecture the weights belong to as model=, or "
            f"weights of {model!r}."
        )
    module.load_state_dict(state, strict=False)
