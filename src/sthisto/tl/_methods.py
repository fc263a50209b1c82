"""The predictor protocol shared by M2TGLGO, the baselines and user methods in cross-validation.

A *method* is a fit function ``fit(train, *, genes, modalities, layer, seed, **kwargs)``
that returns a :class:`Predictor`, an object whose ``predict(adata)`` returns the
``(n_obs, len(genes))`` log-normalised expression of a section. :data:`METHODS` names the
built-in ones; any callable with that signature is a method too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from anndata import AnnData

from ._baselines import BASELINES, fit_baseline


@runtime_checkable
class Predictor(Protocol):
    """A fitted method: ``predict(adata)`` returns ``(n_obs, n_genes)`` log-normalised expression."""

    def predict(self, adata: AnnData) -> np.ndarray:
        """Predict the fitted genes on one section."""


FitFunction = Callable[..., Predictor]


def _fit_m2tglgo(train: Sequence[AnnData], *, genes, modalities, layer, seed, **kwargs) -> Predictor:
    from ._fit import fit

    kwargs.setdefault("progress", False)
    return fit(train, genes=genes, modalities=modalities, layer=layer, seed=seed, **kwargs)


def _baseline(method: str) -> FitFunction:
    def fit(train, *, genes, modalities, layer, seed, **kwargs) -> Predictor:
        return fit_baseline(train, method=method, genes=genes, modalities=modalities, layer=layer, seed=seed,
                            **kwargs)

    fit.__name__ = method
    return fit


#: built-in methods by name
METHODS: dict[str, FitFunction] = {"m2tglgo": _fit_m2tglgo, **{b: _baseline(b) for b in BASELINES}}


def resolve_method(method: str | FitFunction) -> tuple[str, FitFunction]:
    """``(name, fit function)`` of a built-in method name or a user callable."""
    if callable(method):
        return getattr(method, "__name__", type(method).__name__), method
    if method in METHODS:
        return method, METHODS[method]
    raise ValueError(f"method must be one of {list(METHODS)} or a callable; got {method!r}")
