"""The one write helper: store a result on AnnData and log what was written."""

from __future__ import annotations

from typing import Any

from anndata import AnnData

from ._logging import logger

_ATTRS = ("obs", "var", "obsm", "varm", "obsp", "varp", "uns", "layers")


def save_data(adata: AnnData, *, attr: str, key: str, data: Any) -> None:
    """Write ``data`` to ``adata.<attr>[key]`` (or columns of obs/var) and log it."""
    if attr not in _ATTRS:
        raise ValueError(f"attr must be one of {_ATTRS}, got {attr!r}")
    container = getattr(adata, attr)
    if attr in ("obs", "var"):
        container[key] = data
    else:
        if key in container:
            logger.info("overwriting adata.%s[%r]", attr, key)
        container[key] = data
    logger.info("added adata.%s[%r]", attr, key)


def copy_or_self(adata: AnnData, copy: bool) -> AnnData:
    """Return a copy of ``adata`` when ``copy`` is true, else ``adata`` itself."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"expected an AnnData object, got {type(adata).__name__}")
    return adata.copy() if copy else adata
