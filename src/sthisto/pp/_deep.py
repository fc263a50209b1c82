"""Deep feature extractors (CNN/ViT): model resolution, weights and the batch runner.

Imported only when a :class:`~sthisto.pp.DeepExtractor` is prepared (it imports torch).
ResNet-18/50 are defined here with torchvision's layer names, so torchvision and timm state
dicts load into them and neither package is required; other torchvision or timm models are
used when those are installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sthisto._logging import logger

from ._weights import apply_state_dict, load_state_dict_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's DEFAULT weights (IMAGENET1K_V1 for resnet18, IMAGENET1K_V2 for resnet50)
WEIGHT_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
}


# --------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    """ResNet basic block (torchvision layout)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual forward pass."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet bottleneck block (torchvision V1.5 layout: stride on the 3×3 conv)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual forward pass."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet with torchvision's parameter names; ``forward`` returns pooled features."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: tuple[int, ...], num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the globally pooled features (B, 512·expansion), before ``fc``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def resnet18() -> ResNet:
    """ResNet-18 (randomly initialised)."""
    return ResNet(BasicBlock, (2, 2, 2, 2))


def resnet50() -> ResNet:
    """ResNet-50 (randomly initialised)."""
    return ResNet(Bottleneck, (3, 4, 6, 3))


_BUILTIN = {"resnet18": resnet18, "resnet50": resnet50}


# --------------------------------------------------------------------------- resolution
@dataclass
class ResolvedModel:
    """A resolved deep model: ``fn(batch) -> (B, D)`` and its input normalisation."""

    fn: Callable[[torch.Tensor], Any]
    name: str
    weights: str
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD
    module: nn.Module | None = field(default=None, repr=False)


def _seeded(builder: Callable[[], nn.Module], seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()


def _is_path(value: Any) -> bool:
    if isinstance(value, str) and value.startswith(("hf-hub:", "timm/")):  # hub names hold a "/" too
        return False
    return isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.sep in value) or (
        isinstance(value, str) and Path(value).suffix in (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
    )


def _weights_label(weights: Any) -> str:
    return "random" if weights is None else str(weights)


def resolve_model(model: Any, weights: Any, *, seed: int) -> ResolvedModel:
    """Turn ``model``/``weights`` into a :class:`ResolvedModel`.

    ``model``: a built-in name (``resnet18``, ``resnet50``), a torchvision or timm name
    (``hf-hub:`` included), a path to a TorchScript or pickled module file, an
    ``nn.Module``, or a callable batch → features. ``weights``: ``"default"``, a path to a
    state dict, or ``None`` (seeded random initialisation).
    """
    if weights is not None and not (isinstance(weights, str) and weights == "default"):
        if not isinstance(weights, str | os.PathLike):
            raise TypeError(f"weights must be 'default', None or a path to a state-dict file, got "
                            f"{type(weights).__name__}.")
        if not Path(weights).expanduser().is_file():
            raise FileNotFoundError(
                f"weights={os.fspath(weights)!r} is neither 'default', None, nor an existing state-dict file."
            )
    if isinstance(model, nn.Module):
        if weights not in (None, "default"):
            apply_state_dict(model, load_state_dict_file(weights), f"in file {weights}", type(model).__name__)
        return ResolvedModel(model, type(model).__name__, _weights_label(weights) if weights else "module", module=model)
    if isinstance(model, str | os.PathLike) and _is_path(model):
        return resolve_model(_load_module_file(model), weights, seed=seed)
    if callable(model) and not isinstance(model, str):
        if weights not in (None, "default"):
            raise ValueError("weights= cannot be applied to a plain callable; load them yourself.")
        return ResolvedModel(model, getattr(model, "__name__", type(model).__name__), "callable")
    if not isinstance(model, str):
        raise TypeError(f"model must be a name, an nn.Module or a callable, got {type(model).__name__}")
    name = model
    if name in _BUILTIN:
        return _builtin(name, weights, seed)
    if name.startswith("hf-hub:") or name.startswith("timm/"):
        return _timm(name, weights, seed)
    tv = _torchvision_names()
    if name in tv:
        return _torchvision(name, weights, seed)
    timm_ok = _timm_has(name)
    if timm_ok:
        return _timm(name, weights, seed)
    raise ValueError(
        f"unknown model {name!r}: use 'texture', one of {sorted(_BUILTIN)}, a torchvision name "
        f"(pip install torchvision{'' if tv else ' — not installed'}), a timm name incl. 'hf-hub:...' "
        f"(pip install timm{'' if timm_ok is not None else ' — not installed'}), an nn.Module or a callable."
    )


def _load_module_file(path: str | os.PathLike) -> nn.Module:
    import pickle

    from sthisto._errors import DEPENDENCY_ERRORS, reading
    from sthisto._validate import existing_file

    path = existing_file(path, "model file")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError):
        pass
    with reading(path, "model file", expected="a TorchScript module (torch.jit.save) or a module saved with "
                 "torch.save(module)", errors=(*DEPENDENCY_ERRORS, RuntimeError, pickle.UnpicklingError)):
        obj = torch.load(path, map_location="cpu", weights_only=False)  # a pickled nn.Module, as documented
    if not isinstance(obj, nn.Module):
        raise ValueError(
            f"{path} holds a {type(obj).__name__}, not a module; pass a state dict as weights= "
            "together with model=<architecture>."
        )
    return obj


def _builtin(name: str, weights: Any, seed: int) -> ResolvedModel:
    module = _seeded(_BUILTIN[name], seed)
    if weights == "default":
        state = torch.hub.load_state_dict_from_url(
            WEIGHT_URLS[name], map_location="cpu", progress=False, check_hash=True
        )
        apply_state_dict(module, state, f"downloaded from {WEIGHT_URLS[name]}", name)
    elif weights is not None:
        apply_state_dict(module, load_state_dict_file(weights), f"in file {weights}", name)
    else:
        _warn_random(name, seed)
    module.fc = nn.Identity()
    return ResolvedModel(module, name, _weights_label(weights), module=module)


def _warn_random(name: str, seed: int) -> None:
    logger.warning(
        "model %r runs with randomly initialised weights (seed %d): such features are weak; "
        "use weights='default' (pretrained) or a local weights file, or model='texture'.",
        name,
        seed,
    )


def _torchvision_names() -> set[str]:
    try:
        import torchvision  # noqa: F401
        from torchvision import models
    except (ImportError, RuntimeError, OSError):  # a torchvision built for another torch fails here
        return set()
    return set(models.list_models(module=models))


def _torchvision(name: str, weights: Any, seed: int) -> ResolvedModel:
    from torchvision import models

    module = _seeded(lambda: models.get_model(name, weights="DEFAULT" if weights == "default" else None), seed)
    if weights not in (None, "default"):
        apply_state_dict(module, load_state_dict_file(weights), f"in file {weights}", name)
    elif weights is None:
        _warn_random(name, seed)
    for head in ("fc", "classifier", "heads", "head"):
        if hasattr(module, head):
            setattr(module, head, nn.Identity())
            break
    return ResolvedModel(module, f"torchvision:{name}", _weights_label(weights), module=module)


def _timm_has(name: str) -> bool | None:
    try:
        import timm
    except ImportError:
        return None
    return bool(timm.is_model(name)) or bool(timm.list_models(name))


def _timm(name: str, weights: Any, seed: int) -> ResolvedModel:
    try:
        import timm
    except ImportError as err:
        raise ImportError(f"model {name!r} needs timm: pip install timm") from err
    try:
        module = _seeded(lambda: timm.create_model(name, pretrained=weights == "default", num_classes=0), seed)
    except (OSError, RuntimeError, ValueError) as err:  # hub offline, gated, not cached, bad config
        raise OSError(f"cannot create timm model {name!r} (weights={weights!r}): {err}. For 'hf-hub:' models "
                      "accept the licence on the hub, log in (HF_TOKEN), or pre-download them into the "
                      "Hugging Face cache and set HF_HUB_OFFLINE=1.") from err
    if weights not in (None, "default"):
        apply_state_dict(module, load_state_dict_file(weights), f"in file {weights}", name)
    elif weights is None:
        _warn_random(name, seed)
    cfg = timm.data.resolve_data_config({}, model=module)
    return ResolvedModel(
        module, f"timm:{name}", _weights_label(weights), tuple(cfg["mean"]), tuple(cfg["std"]), module=module
    )


def _as_features(out: Any, n: int, name: str) -> np.ndarray:
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    if isinstance(out, torch.Tensor):
        out = out.detach().float().cpu().numpy()
    out = np.asarray(out, dtype=np.float32)
    while out.ndim > 2 and out.shape[-1] == 1:
        out = out[..., 0]
    if out.ndim != 2 or out.shape[0] != n:
        raise ValueError(
            f"model {name!r} returned an array of shape {out.shape} for a batch of {n} patches; "
            "it must return (batch, n_features) — pool spatial maps (e.g. global average) first."
        )
    return out


def deep_runner(model: Any, weights: Any, seed: int, device, amp: bool, normalize: bool) -> tuple[Callable, dict]:
    """Build the batch function ``uint8 (B, H, W, 3) -> float32 (B, D)`` and its recorded params.

    Returns
    -------
    ``(run, info)``: the function and ``model``, ``weights``, ``device``, ``amp``,
    ``normalize``, ``mean``, ``std`` as stored in ``uns``.
    """
    from sthisto._device import resolve_device

    dev = resolve_device(device)
    ext = resolve_model(model, weights, seed=seed)
    if ext.module is not None:
        ext.module.eval().to(dev)
    use_amp = bool(amp) and dev.type == "cuda"
    if amp and not use_amp:
        logger.warning("amp=True only applies on CUDA; running in float32 on %s.", dev)
    mean = std = None
    if normalize and ext.mean is not None:
        mean = torch.tensor(ext.mean, device=dev).view(1, 3, 1, 1)
        std = torch.tensor(ext.std, device=dev).view(1, 3, 1, 1)

    def run(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(dev).permute(0, 3, 1, 2).float().div_(255.0)
        if mean is not None:
            x = (x - mean) / std
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            out = ext.fn(x)
        return _as_features(out, len(images), ext.name)

    info = {"model": ext.name, "weights": ext.weights, "device": str(dev), "amp": use_amp,
            "normalize": "none" if mean is None else "mean/std", "mean": list(ext.mean or ()), "std": list(ext.std or ())}
    return run, info
