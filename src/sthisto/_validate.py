"""Checks of user input that fail early, before anything is computed or written.

Each check raises an error naming the argument, file or AnnData field, what was expected
and what to do (see ``docs/errors.md``). Scalar checks (:func:`integer`, :func:`number`,
:func:`one_of`) are plain Python, so ``sthisto.settings`` can use them at import without
loading numpy; array checks import numpy when called.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _constants as K
from ._errors import InputError

if TYPE_CHECKING:
    import numpy as np
    from anndata import AnnData


# --- scalar arguments -------------------------------------------------------------------

def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" between {minimum} and {maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _fix(fix: str | None) -> str:
    return f" To fix: {fix.rstrip('.')}." if fix else ""


def integer(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None,
            fix: str | None = None) -> int:
    """Return ``value`` as an ``int``, raising unless it is a whole number within the bounds.

    Integral floats (``3.0``) are accepted; ``2.5``, ``True``, strings and NaN are not.
    """
    ok = not isinstance(value, bool) and (
        isinstance(value, numbers.Integral)
        or (isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer())
    )
    if ok:
        whole = int(value)
        ok = (minimum is None or whole >= minimum) and (maximum is None or whole <= maximum)
    if not ok:
        raise InputError(f"{name} must be an integer{_bounds(minimum, maximum)}, got {value!r}.{_fix(fix)}")
    return whole


def number(value: Any, name: str, *, positive: bool = False, minimum: float | None = None,
           maximum: float | None = None, fix: str | None = None) -> float:
    """Return ``value`` as a finite ``float``, raising unless it is a real number within the bounds.

    ``positive=True`` requires ``value > 0``; ``minimum``/``maximum`` are inclusive. Booleans,
    strings, NaN and infinities are rejected.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        real = float(value)
        ok = (not positive or real > 0) and (minimum is None or real >= minimum) and (
            maximum is None or real <= maximum)
    if not ok:
        kind = "a positive finite number" if positive else "a finite number"
        raise InputError(f"{name} must be {kind}{_bounds(minimum, maximum)}, got {value!r}.{_fix(fix)}")
    return real


def one_of(value: Any, name: str, choices: Sequence[Any], *, fix: str | None = None) -> Any:
    """Return ``value``, raising unless it is one of ``choices``."""
    try:
        ok = value in choices
    except TypeError:  # unhashable value against a set
        ok = False
    if not ok:
        raise InputError(f"{name} must be one of {tuple(choices)}, got {value!r}.{_fix(fix)}")
    return value


def key_name(value: Any, name: str = "key_added", *, what: str = "an AnnData key") -> str:
    """Return ``value``, raising unless it is a non-empty string (an AnnData key, a column, a label)."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string ({what}), got {value!r}.")
    return value


def flag(value: Any, name: str) -> bool:
    """Return ``value`` as a ``bool``, raising unless it is ``True`` or ``False`` (numpy booleans too).

    ``symmetric="no"`` is truthy: taking it as ``True`` would do the opposite of what was meant.
    """
    if type(value).__name__ not in ("bool", "bool_"):
        raise InputError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def name_list(value: Any, name: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    """Return ``value`` as a tuple of strings; one string is one name, not its characters.

    ``evidence_exclude="IEA"`` means ``("IEA",)``: iterating the string would give ``("I", "E", "A")``.
    """
    if isinstance(value, str):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise InputError(f"{name} must be a name or a list of names, got {value!r}.") from None
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        raise InputError(f"{name} must hold names (strings), got {bad[0]!r} in {list(items)!r}.")
    if not items and not allow_empty:
        raise InputError(f"{name} is empty: give at least one name.")
    return items


def affordable(n_bytes: float, what: str, *, fix: str | None = None) -> None:
    """Raise when ``what`` would need more memory than this machine has in total.

    A huge argument (``patch_px=10**6``, ``dim=10**9``) then ends in an error naming it,
    not in a ``MemoryError`` from deep inside numpy (or the machine swapping).
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: no limit known
        return
    if n_bytes > total:
        raise InputError(f"{what} would need {n_bytes / 2**30:.3g} GiB of memory, more than this machine "
                         f"has ({total / 2**30:.3g} GiB).{_fix(fix)}")


def _path(path: Any, what: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{what} must be a path (str or os.PathLike), got {type(path).__name__} {path!r}.")
    return Path(path).expanduser()


def _existing(path: Any, what: str, *, folder: bool) -> Path:
    path = _path(path, what)
    if folder and path.is_file():
        raise NotADirectoryError(f"{what} {path} is a file; pass the folder.")
    if not folder and path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder; pass the file itself.")
    if not (path.is_dir() if folder else path.is_file()):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def existing_file(path: Any, what: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, raising unless it is an existing file.

    Raises ``TypeError`` for something that is not a path, ``IsADirectoryError`` for a
    folder and ``FileNotFoundError`` for a missing file, each naming ``what``.
    """
    return _existing(path, what, folder=False)


def existing_folder(path: Any, what: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, raising unless it is an existing folder.

    Raises ``TypeError`` for something that is not a path, ``NotADirectoryError`` for a
    file and ``FileNotFoundError`` for a missing folder, each naming ``what``.
    """
    return _existing(path, what, folder=True)


# --- AnnData fields ---------------------------------------------------------------------

def library_id(adata: AnnData, library_id: str | None = None) -> str:
    """Resolve the library id in ``uns['spatial']`` (the only one, when ``None``)."""
    spatial = adata.uns.get(K.SPATIAL_UNS)
    if not isinstance(spatial, Mapping) or len(spatial) == 0:
        raise KeyError(
            "adata.uns['spatial'] is missing: read the section with sthisto.read.legacy_st or "
            "sthisto.read.visium (or scanpy.read_visium) so the image and scale factors are attached."
        )
    if library_id is None:
        if len(spatial) > 1:
            raise ValueError(
                f"adata.uns['spatial'] holds several libraries {list(spatial)}; pass library_id=."
            )
        return next(iter(spatial))
    if library_id not in spatial:
        raise KeyError(f"library_id {library_id!r} not in adata.uns['spatial'] ({list(spatial)})")
    return library_id


def spatial_coords(adata: AnnData, spatial_key: str = K.SPATIAL_KEY) -> np.ndarray:
    """Return ``obsm[spatial_key]`` as a finite float64 (n_obs, 2) array of (x, y) pixels."""
    import numpy as np

    if spatial_key not in adata.obsm:
        raise KeyError(
            f"adata.obsm[{spatial_key!r}] (spot centres in full-resolution pixels) is missing; "
            "read the section with sthisto.read.legacy_st or sthisto.read.visium."
        )
    xy = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise ValueError(f"adata.obsm[{spatial_key!r}] must be (n_obs, 2), got {xy.shape}")
    if not np.isfinite(xy[:, :2]).all():
        raise ValueError(f"adata.obsm[{spatial_key!r}] contains NaN or infinite coordinates")
    return xy[:, :2]


def distinct_positions(xy: np.ndarray, ids: Sequence[str], *, where: str) -> None:
    """Raise when two spots of ``xy`` (n, 2) share a centre (a spot graph needs distinct spots)."""
    import numpy as np

    _, inverse, counts = np.unique(np.asarray(xy, dtype=np.float64), axis=0, return_inverse=True,
                                   return_counts=True)
    inverse = inverse.ravel()
    shared = counts[inverse] > 1
    if shared.any():
        first = np.flatnonzero(inverse == inverse[np.argmax(shared)])[:2]
        names = [str(np.asarray(ids)[i]) for i in first]
        x, y = np.asarray(xy, dtype=np.float64)[first[0]]
        raise InputError(
            f"{where}: {int(shared.sum())} spots share their centre with another spot (e.g. {names[0]!r} "
            f"and {names[1]!r} at ({x:g}, {y:g})); a spot graph needs distinct positions. To fix: drop "
            "the duplicated spots, e.g. adata = adata[~pd.DataFrame(adata.obsm['spatial'])"
            ".duplicated().to_numpy()].copy()."
        )


def require_key(mapping: Mapping, key: str, where: str, producer: str) -> None:
    """Raise a KeyError naming ``producer`` when ``mapping[key]`` is missing."""
    if key not in mapping:
        raise KeyError(f"adata.{where}[{key!r}] is missing: run `{producer}` first.")


def anndata(value: Any, name: str = "adata") -> AnnData:
    """Return ``value``, raising a ``TypeError`` unless it is an AnnData object."""
    from anndata import AnnData

    if not isinstance(value, AnnData):
        raise TypeError(f"{name} must be an AnnData object, got {type(value).__name__}.")
    return value


def has_spots(adata: AnnData, *, where: str = "adata") -> None:
    """Raise when ``adata`` has no spots (an empty selection such as ``adata[mask]`` with no match)."""
    if adata.n_obs == 0:
        raise InputError(f"{where} has no spots (n_obs = 0); check the selection that made it.")


def unique_obs_names(adata: AnnData, *, where: str = "adata") -> None:
    """Raise when ``obs_names`` are not unique (a step that names spots needs unique names)."""
    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()].unique()[:5].tolist()
        raise InputError(f"{where}.obs_names are not unique (e.g. {dup}); spots are named by them. To fix: "
                         "call adata.obs_names_make_unique().")


def unique_var_names(adata: AnnData) -> None:
    """Raise when ``var_names`` are not unique (gene-level steps need unique symbols)."""
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"adata.var_names are not unique (e.g. {dup}); call adata.var_names_make_unique()."
        )


def layer_matrix(adata: AnnData, layer: str | None):
    """Return ``(matrix, description)`` of ``adata.X`` (``layer=None``) or ``adata.layers[layer]``."""
    if layer is None:
        return adata.X, "adata.X"
    if layer not in adata.layers:
        raise KeyError(f"adata.layers[{layer!r}] is missing (available: {list(adata.layers)}).")
    return adata.layers[layer], f"adata.layers[{layer!r}]"


# --- counts -----------------------------------------------------------------------------

def _where_first(x, bad_stored, labels) -> str:
    """``" at spot 'a', gene 'b'"`` (or row/column numbers) of the first flagged stored value."""
    import numpy as np
    import scipy.sparse as sp

    k = int(np.argmax(bad_stored))
    if sp.issparse(x):
        coo = x.tocoo()
        i, j = int(coo.row[k]), int(coo.col[k])
    elif x.ndim == 2:
        i, j = (int(n) for n in np.unravel_index(k, x.shape))
    else:
        return ""
    if labels is not None:
        return f" at spot {str(labels[0][i])!r}, gene {str(labels[1][j])!r}"
    return f" at row {i}, column {j}"


def counts_matrix(x, *, where: str = "adata.X", integer: bool = False, nonzero: bool = False,
                  fix: str | None = None, labels: tuple[Sequence, Sequence] | None = None) -> None:
    """Raise unless ``x`` holds counts: numeric, finite and non-negative.

    With ``integer=True`` the values must also be whole numbers, and with ``nonzero=True``
    not all zero (raw counts, as the readers, :func:`sthisto.tl.fit` and
    :func:`sthisto.tl.evaluate` need). Sparse matrices are checked on their stored values
    only, never densified. ``fix`` is appended to every message as what to do; ``labels``
    (spot names, gene names) name the first offending entry.
    """
    import numpy as np
    import scipy.sparse as sp

    if nonzero and 0 in getattr(x, "shape", (1,)):
        raise InputError(f"{where} is empty (shape {tuple(x.shape)}): no spots or no genes.{_fix(fix)}")
    if sp.issparse(x):
        x = x if x.format in ("csr", "csc", "coo") else x.tocsr()
        values = x.data
    else:
        x = np.asarray(x)
        values = x.ravel()
    if values.dtype.kind not in "biuf":
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{where} holds non-numeric values (dtype {values.dtype}); counts must be "
                             f"numbers.{_fix(fix)}") from None
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            raise InputError(f"{where} contains {int((~finite).sum())} NaN or infinite value(s)"
                             f"{_where_first(x, ~finite, labels)}; counts must be finite.{_fix(fix)}")
    negative = values < 0
    if negative.any():
        raise InputError(f"{where} contains negative values (e.g. {values[negative][0]:g}"
                         f"{_where_first(x, negative, labels)}); raw counts must be >= 0.{_fix(fix)}")
    if integer and values.dtype.kind == "f":
        fractional = values != np.round(values)
        if fractional.any():
            raise InputError(
                f"{where}: counts are not integers ({int(fractional.sum())} of {values.size} stored values, "
                f"e.g. {values[fractional][0]:.4g}{_where_first(x, fractional, labels)}, largest value "
                f"{values.max():.4g}): they look normalised or log-transformed; pass raw UMI/read "
                f"counts.{_fix(fix)}"
            )
    if nonzero and not values.any():
        raise InputError(f"{where} holds no counts (every value is 0).{_fix(fix)}")


def raw_counts(adata: AnnData, layer: str | None = None, *, where: str = "section") -> None:
    """Raise unless ``adata.X`` / ``adata.layers[layer]`` holds raw counts (integers, not all zero).

    What :func:`sthisto.tl.fit` and :func:`sthisto.tl.evaluate` call first: both compute
    ``log1p(normalize_total(counts))`` themselves, so an ``X`` that was already normalised
    or log-transformed (non-integer) would be transformed twice without a word.
    """
    x, name = layer_matrix(adata, layer)
    others = [k for k in adata.layers if k != layer]
    fix = (f"pass layer= naming the layer of raw counts (adata.layers has {others})" if others
           else "put the raw counts in adata.X or a layer and pass layer=")
    if "log1p" in adata.uns and layer is None:
        fix += " (adata.uns['log1p'] shows that scanpy.pp.log1p was applied to X)"
    fix += "; sthisto normalises and log-transforms the counts itself"
    counts_matrix(x, where=f"{where}: {name}", integer=True, nonzero=True, fix=fix,
                  labels=(adata.obs_names, adata.var_names))


def rgb_image(img, *, where: str = "image", batch: bool = False) -> None:
    """Raise unless ``img`` is a non-empty ``(H, W, 3)`` uint8 RGB array.

    The one check of an H&E image used by every image step. With ``batch=True`` the array
    is a stack of patches ``(B, H, W, 3)``. Only ``shape`` and ``dtype`` are read, so a
    memory-mapped or dask image is not loaded.
    """
    import numpy as np  # imported when an array is checked

    shape = tuple(getattr(img, "shape", ()))
    lead = 1 if batch else 0
    layout = "(B, H, W, 3)" if batch else "(H, W, 3)"
    if len(shape) == 2 + lead:
        raise ValueError(f"{where} is grayscale {shape}; an RGB H&E image {layout} is required.")
    if len(shape) != 3 + lead or shape[-1] != 3:
        hint = " (drop the alpha channel: img[..., :3])" if len(shape) == 3 + lead and shape[-1] == 4 else ""
        raise ValueError(f"{where} must be {layout} RGB, got shape {shape}{hint}.")
    if shape[lead] == 0 or shape[lead + 1] == 0:
        raise ValueError(f"{where} is empty (shape {shape}).")
    dtype = np.dtype(getattr(img, "dtype", np.float64))
    if dtype != np.uint8:
        raise ValueError(f"{where} must be 8-bit (uint8) RGB, got dtype {dtype}; convert it, e.g. "
                         "skimage.util.img_as_ubyte(img).")
