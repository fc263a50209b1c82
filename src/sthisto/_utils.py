"""The one write helper (store a result on AnnData and log it), staged writes and detached copies.

A step checks all its inputs, computes, and only then writes: :class:`Outputs` collects
what a step will write, checks that every item fits the AnnData (lengths, shapes, index),
and writes them all at once, restoring the previous values if a write still fails, so a
failing step leaves the AnnData exactly as it was. :func:`detach` copies what an output
takes from an input, so the two never share a mutable object.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Mapping
from typing import Any

from anndata import AnnData

from ._logging import logger
from ._validate import key_name

_ATTRS = ("obs", "var", "obsm", "varm", "obsp", "varp", "uns", "layers")
_MISSING = object()


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


def _expected_shape(adata: AnnData, attr: str) -> tuple[int | None, int | None]:
    n_obs, n_vars = adata.n_obs, adata.n_vars
    return {
        "obs": (n_obs, None), "obsm": (n_obs, None), "var": (n_vars, None), "varm": (n_vars, None),
        "obsp": (n_obs, n_obs), "varp": (n_vars, n_vars), "layers": (n_obs, n_vars),
    }.get(attr, (None, None))


def _check_fits(adata: AnnData, attr: str, key: str, data: Any) -> None:
    """Raise unless ``data`` can be stored in ``adata.<attr>[key]`` without a partial write."""
    import pandas as pd

    rows, cols = _expected_shape(adata, attr)
    if rows is None or isinstance(data, str | bytes | int | float | bool):
        return  # uns, or a scalar broadcast to an obs/var column
    shape = getattr(data, "shape", None) or (len(data),)
    if shape[0] != rows or (cols is not None and (len(shape) < 2 or shape[1] != cols)):
        want = f"({rows}, {cols})" if cols is not None else f"{rows} rows"
        raise ValueError(f"cannot write adata.{attr}[{key!r}]: expected {want}, got shape {tuple(shape)}.")
    index = adata.obs_names if attr in ("obs", "obsm") else adata.var_names
    if isinstance(data, pd.Series | pd.DataFrame) and not data.index.equals(index):
        raise ValueError(f"cannot write adata.{attr}[{key!r}]: its index differs from adata.{attr[:3]}_names "
                         "(pandas would align it and fill NaN).")


class Outputs:
    """What one step writes, staged until everything is computed, then written at once.

    Examples
    --------
    >>> out = Outputs()
    >>> out.add("obsm", "sthisto_deep", features)      # nothing is written yet
    >>> out.add("uns", "sthisto_deep", {"params": params})
    >>> out.write(adata)                                # checks every item, then writes all
    """

    def __init__(self) -> None:
        self._items: list[tuple[str, str, Any]] = []

    def add(self, attr: str, key: str, data: Any) -> None:
        """Stage ``data`` for ``adata.<attr>[key]`` (a column for ``obs``/``var``)."""
        if attr not in _ATTRS:
            raise ValueError(f"attr must be one of {_ATTRS}, got {attr!r}")
        key_name(key, f"the key of adata.{attr}")
        self._items.append((attr, key, data))

    def write(self, adata: AnnData) -> None:
        """Check that every staged item fits ``adata``, then write them all (or none)."""
        for attr, key, data in self._items:
            _check_fits(adata, attr, key, data)
        previous = []
        try:
            for attr, key, data in self._items:
                container = getattr(adata, attr)
                before = container[key] if key in container else _MISSING
                previous.append((attr, key, before))
                save_data(adata, attr=attr, key=key, data=data)
        except Exception:
            for attr, key, before in reversed(previous):
                container = getattr(adata, attr)
                if before is _MISSING:
                    if key in container:
                        del container[key]
                else:
                    container[key] = before
            raise


def detach(value: Any) -> Any:
    """Copy ``value`` so that an output never shares a mutable object with an input.

    Dicts, lists and tuples are copied recursively, writable arrays (numpy, pandas,
    scipy.sparse) are copied; read-only arrays (a memory-mapped full-resolution image
    opened for reading) cannot be changed in place and are shared, so whole slides are
    not duplicated.
    """
    import numpy as np

    if isinstance(value, Mapping):
        return {k: detach(v) for k, v in value.items()}
    if isinstance(value, list):
        return [detach(v) for v in value]
    if isinstance(value, tuple):
        return tuple(detach(v) for v in value)
    if isinstance(value, np.ndarray):
        return value if not value.flags.writeable else value.copy()
    if isinstance(value, str | bytes | int | float | bool | type(None) | np.generic):
        return value
    if hasattr(value, "copy"):
        return value.copy()
    return _copy.deepcopy(value)
