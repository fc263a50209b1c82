"""sthisto: predict spatial gene expression from H&E histology (M2TGLGO) on AnnData.

Namespaces are loaded on first access, so ``import sthisto`` stays fast and does not
import torch, torch_geometric, squidpy, spatialdata or matplotlib.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from ._settings import settings

try:
    __version__ = version("sthisto")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

_SUBMODULES = ("datasets", "read", "io", "pp", "tl", "pl", "module")
__all__ = ["settings", "__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'sthisto' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
