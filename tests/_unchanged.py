"""Assert that a failing call left its AnnData exactly as it was (every field, recursively)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp


def _same(a, b, where: str) -> None:
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            _same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, pd.DataFrame | pd.Series | pd.Index):
        assert type(a) is type(b) and a.equals(b), f"{where} changed"
    elif sp.issparse(a):
        assert sp.issparse(b) and a.shape == b.shape and (a != b).nnz == 0, f"{where} changed"
    elif isinstance(a, np.ndarray | np.generic):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{where} changed")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where} changed length"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_unchanged(adata, before) -> None:
    """Compare ``adata`` with ``before`` (an ``adata.copy()`` taken before the call)."""
    assert adata.shape == before.shape
    _same(adata.X, before.X, "X")
    for attr in ("obs", "var"):
        _same(getattr(adata, attr), getattr(before, attr), attr)
    for attr in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
        _same(dict(getattr(adata, attr)), dict(getattr(before, attr)), attr)
