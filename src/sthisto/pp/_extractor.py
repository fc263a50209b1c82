"""Feature extractors of :func:`sthisto.pp.image_features`: parts, each owning its options.

An extractor maps a batch of uint8 RGB patches ``(B, P, P, 3)`` to features ``(B, D)``. Two
kinds come with sthisto:

- :class:`TextureExtractor` — weights-free colour and texture statistics (no options; CPU);
- :class:`DeepExtractor` — a CNN/ViT (built-in ResNets, torchvision, timm, a module file,
  an ``nn.Module`` or a tensor callable) with its ``weights``, ``device``, ``amp`` and
  ``normalize``.

Each extractor names the ``obsm`` key of its modality (:attr:`Extractor.key_added`), the key
:func:`sthisto.tl.fit` reads for that modality: ``"sthisto_texture"`` for texture,
``"sthisto_deep"`` for deep features. This module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sthisto import _constants as K


@runtime_checkable
class Extractor(Protocol):
    """What :func:`sthisto.pp.image_features` needs from a feature extractor.

    Subclass it to inherit the defaults of ``prepare``, ``columns`` and ``record``.
    """

    name: str
    key_added: str  # obsm key of the modality, the default of image_features(key_added=None)

    def prepare(self, *, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        """Return the batch function ``uint8 (B, P, P, 3) -> float32 (B, D)`` (load weights here)."""
        ...

    def columns(self) -> list[str] | None:
        """Names of the ``D`` features (stored as a DataFrame), or ``None`` (a plain array)."""
        return None

    def record(self) -> dict[str, Any]:
        """Parameters stored in ``uns[key]['params']`` (valid after :meth:`prepare`)."""
        return {"model": self.name}


@dataclass(frozen=True)
class TextureExtractor(Extractor):
    """Weights-free colour and texture statistics (:mod:`sthisto.pp._texture`), on the CPU.

    Per patch: RGB and HED means, standard deviations, quantiles and histograms; GLCM
    statistics at 1, 2 and 4 px; a uniform LBP histogram; Sobel gradient statistics.
    """

    name: str = field(default="texture", init=False)
    key_added: str = field(default=K.TEXTURE, init=False)

    def prepare(self, *, seed):  # noqa: D102
        from ._texture import texture_features

        return texture_features

    def columns(self):  # noqa: D102
        from ._texture import feature_names

        return feature_names()

    def record(self):  # noqa: D102
        return {"model": "texture", "weights": "none", "device": "cpu"}


@dataclass
class DeepExtractor(Extractor):
    """A CNN/ViT applied to the patches.

    Parameters
    ----------
    model
        ``"resnet18"``/``"resnet50"`` (built in, torchvision layer names); another
        torchvision name or a timm name incl. ``"hf-hub:..."`` (when those packages are
        installed); a path to a TorchScript or pickled module; an :class:`torch.nn.Module`;
        or any callable mapping a float tensor (B, 3, H, W) to features (B, D).
    weights
        ``"default"``: pretrained weights through torch hub's cache (``$TORCH_HOME/hub``)
        or timm/Hugging Face; a path to a state dict; ``None``: seeded random
        initialisation (logged: such features are weak). Modules keep their weights
        unless a path is given.
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:i"`` or ``"auto"``; ``None`` uses ``sthisto.settings.device``.
    amp
        Float16 autocast on CUDA.
    normalize
        Standardise patches with the model's mean/std (ImageNet for modules/callables).
    """

    model: Any = "resnet50"
    weights: Any = "default"
    device: str | None = None
    amp: bool = False
    normalize: bool = True
    key_added: str = field(default=K.DEEP, init=False)
    _info: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def name(self) -> str:  # noqa: D102
        return self._info.get("model", self.model if isinstance(self.model, str) else type(self.model).__name__)

    def prepare(self, *, seed):  # noqa: D102
        from ._deep import deep_runner

        run, self._info = deep_runner(self.model, self.weights, seed, self.device, self.amp, self.normalize)
        return run

    def record(self):  # noqa: D102
        return dict(self._info)


DEEP_OPTIONS = tuple(f.name for f in fields(DeepExtractor) if f.init and f.name != "model")


def as_extractor(model: Any, **options: Any) -> Extractor:
    """Turn ``image_features(model=..., weights=..., ...)`` into an :class:`Extractor`.

    Parameters
    ----------
    model
        An :class:`Extractor`; ``"texture"`` (:class:`TextureExtractor`); anything else
        (a model name, a path, an ``nn.Module``, a callable) is a :class:`DeepExtractor`.
    **options
        Options of :class:`DeepExtractor` (``weights``, ``device``, ``amp``, ``normalize``)
        that were given; they are refused for the texture extractor and for an extractor
        instance (set them on the instance instead).

    Returns
    -------
    The extractor.
    """
    unknown = sorted(set(options) - set(DEEP_OPTIONS))
    if unknown:
        raise TypeError(f"unknown extractor options {unknown}; known: {list(DEEP_OPTIONS)}")
    given = ", ".join(f"{k}=" for k in options)
    if isinstance(model, Extractor):
        if options:
            raise ValueError(f"{given} cannot be combined with an Extractor instance; set them on it, "
                             "e.g. DeepExtractor('resnet50', weights=None).")
        return model
    if isinstance(model, str) and model == "texture":
        if options:
            raise ValueError(f"{given} apply to deep models only: the texture extractor has no weights, "
                             "runs on the CPU and does not normalise patches.")
        return TextureExtractor()
    return DeepExtractor(model, **options)
