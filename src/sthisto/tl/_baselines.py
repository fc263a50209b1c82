"""Baselines run by the same harness as M2TGLGO: same features, folds, genes and targets.

These are what M2TGLGO must beat. Every tuned knob is chosen by inner validation on the
training sections only (:mod:`sthisto.tl._inner`: leave one training section out, or
the two spatial halves of a single section), with the criterion the benchmarks report:
the mean per-gene PCC on the genes being fitted.

* ``"ridge"``: standardised features → ridge regression; ``alpha`` from :data:`ALPHAS`.
* ``"ridge_context"``: ridge on ``[features, mean of the features of the spot's graph
  neighbours]`` (spatial context from ``obsp['spatial_connectivities']``); ``alpha``
  chosen the same way.
* ``"knn"``: k-nearest-neighbour regression on the standardised features; ``k`` from
  :data:`NEIGHBORS` (capped by the number of training spots).
* ``"hest_probe"``: the HEST-Benchmark linear probe, untuned — ``StandardScaler`` →
  ``PCA`` (256 components, capped by spots and features) → ``Ridge`` with HEST's
  ``alpha = 100 / (n_components · n_genes)``, i.e. nearly unregularised. HEST fits
  without an intercept on the centred PCA scores; we fit the intercept, which gives the
  same coefficients and PCCs and predictions on the scale of the targets.
* ``"mean"``: every spot gets the training mean of each gene. Its per-gene PCC is
  undefined (constant prediction) and reported as such; it anchors MSE/MAE.

Features are the concatenated ``obsm`` blocks of ``features`` (names from
:data:`sthisto._constants.MODALITY_KEYS`, or obsm keys), read exactly as M2TGLGO reads
them. Targets are :func:`sthisto._expression.log_normalized`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from sthisto import _constants as K
from sthisto._errors import InputError
from sthisto._expression import targets
from sthisto.tl._data import read_features, spot_graph
from sthisto.tl._inner import inner_splits
from sthisto.tl._metrics import mean_pearson

BASELINES = ("ridge", "ridge_context", "knn", "hest_probe", "mean")
#: ridge penalties tried by inner validation (the top approaches the ridge limit X Xᵀ y)
ALPHAS = tuple(float(a) for a in np.logspace(-1, 8, 19))
#: neighbour counts tried by inner validation
NEIGHBORS = (3, 5, 10, 20, 30, 50, 80, 120)
HEST_COMPONENTS = 256


def feature_matrix(adata: AnnData, features: Sequence[str], *, context: bool = False,
                   neighbors_key: str = K.SPATIAL_NEIGHBORS) -> np.ndarray:
    """Concatenate the ``obsm`` blocks named by ``features`` into one (n_obs, d) float64 array.

    Blocks are read exactly as M2TGLGO reads them (:func:`sthisto.tl._data.read_features`):
    a missing block raises a ``KeyError`` naming the function that computes it, NaN or
    infinite values a ``ValueError``. With ``context``, the mean of each spot's graph
    neighbours' features is appended (a spot without neighbours gets its own features).
    """
    if isinstance(features, str):
        features = [features]
    if not features:
        raise ValueError("features is empty: name at least one obsm block (e.g. 'deep').")
    blocks = read_features(adata, features)
    x = np.concatenate([blocks[name] for name in features], axis=1).astype(np.float64)
    if not context:
        return x
    graph = spot_graph(adata, neighbors_key)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    neigh = np.asarray(sp.csr_matrix(graph) @ x)
    lonely = degree == 0
    neigh[~lonely] /= degree[~lonely, None]
    neigh[lonely] = x[lonely]
    return np.hstack([x, neigh])


@dataclass
class BaselineModel:
    """A fitted baseline: ``predict(adata)`` returns (n_obs, n_genes) on the target scale."""

    method: str
    genes: list[str]
    features: tuple[str, ...]
    estimator: Any = None
    mean: np.ndarray | None = None
    n_features: int = 0
    context: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def predict(self, adata: AnnData) -> np.ndarray:
        """Predict the model's genes for every spot of ``adata``."""
        x = feature_matrix(adata, self.features, context=self.context)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"the section has {x.shape[1]} feature columns, the baseline was fit on "
                f"{self.n_features}; compute features with the same settings for every section."
            )
        if self.method == "mean":
            return np.repeat(self.mean[None, :], adata.n_obs, axis=0)
        return np.asarray(self.estimator.predict(x), dtype=np.float64).reshape(adata.n_obs, -1)


def _ridge(alpha: float):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def _knn(k: int):
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=k))


def _hest_probe(n_components: int, n_genes: int, seed: int):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), PCA(n_components=n_components, svd_solver="full", random_state=seed),
                         Ridge(alpha=100.0 / (n_components * n_genes)))


def _stack(adatas, genes, features, layer, context):
    x = np.concatenate([feature_matrix(a, features, context=context) for a in adatas])
    y = np.concatenate([targets(a, genes, layer) for a in adatas])
    return x, y


def choose_by_inner_validation(
    adatas: Sequence[AnnData], grid: Sequence, make: Callable, *, genes: list[str], features, layer,
    context: bool = False, cap: Callable | None = None,
) -> tuple[Any, dict[str, float]]:
    """Pick the grid value whose estimator has the best mean inner-validation PCC.

    ``make(value)`` builds an unfitted estimator; ``cap(value, n_train)`` (optional)
    limits a value by the inner training size. Returns ``(best value, {value: score})``.
    """
    splits = [(_stack(f, genes, features, layer, context), [_stack([v], genes, features, layer, context)
                                                         for v in vs]) for f, vs in inner_splits(adatas)]
    scores = {}
    for value in grid:
        per_split = []
        for (x, y), vals in splits:
            v = cap(value, len(x)) if cap is not None else value
            est = make(v).fit(x, y)
            per_split += [mean_pearson(yv, est.predict(xv).reshape(yv.shape)) for xv, yv in vals]  # one gene: 1-D
        scores[value] = float(np.mean(per_split))
    best = max(grid, key=lambda v: (scores[v], -grid.index(v)))  # earliest grid value on ties
    return best, scores


def _values(values, name: str) -> list:
    """Return the values of a grid argument as a non-empty list (one value: a list of one)."""
    items = [values] if isinstance(values, int | float) else values
    if isinstance(items, str) or not hasattr(items, "__iter__") or not list(items):
        raise InputError(f"{name} must be a number or a non-empty list of numbers, got {values!r}.")
    return list(items)


def fit_baseline(
    adatas: Sequence[AnnData],
    *,
    method: str = "ridge",
    genes: Sequence[str],
    modalities: Sequence[str] = K.DEFAULT_MODALITIES,
    layer: str | None = None,
    alphas: Sequence[float] = ALPHAS,
    neighbors: Sequence[int] = NEIGHBORS,
    n_components: int = HEST_COMPONENTS,
    seed: int = 0,
) -> BaselineModel:
    """Fit a baseline on the training sections' features and log-normalised targets.

    Parameters
    ----------
    adatas
        Training sections.
    method
        One of :data:`BASELINES`.
    genes
        Genes to predict (present in every section).
    modalities
        Modality names or ``obsm`` keys, concatenated (as in :func:`sthisto.tl.fit`).
    layer
        Layer holding raw counts; ``None`` uses ``X``.
    alphas
        Ridge penalties tried by inner validation (``"ridge"``, ``"ridge_context"``); one
        value fixes it.
    neighbors
        Neighbour counts tried by inner validation (``"knn"``); one value fixes it.
    n_components
        PCA components of the HEST probe (capped by spots and features).
    seed
        Random state of the HEST probe's PCA solver.

    Returns
    -------
    A :class:`BaselineModel`; ``params`` holds the chosen value and the inner-validation
    score of every value tried.
    """
    from sthisto._validate import integer, name_list, number, one_of, raw_counts

    from ._select_genes import sections

    method = one_of(method, "method", BASELINES)
    adatas = sections(adatas)
    genes = list(name_list(genes, "genes", allow_empty=False))
    features = name_list(modalities, "modalities", allow_empty=False)
    alphas = [number(a, f"alphas[{i}]", positive=True) for i, a in enumerate(_values(alphas, "alphas"))]
    neighbors = [integer(k, f"neighbors[{i}]", minimum=1) for i, k in enumerate(_values(neighbors, "neighbors"))]
    n_components = integer(n_components, "n_components", minimum=1)
    seed = integer(seed, "seed", minimum=0, maximum=2**32 - 1)
    for i, a in enumerate(adatas):
        raw_counts(a, layer, where=f"training section {i}")
    context = method == "ridge_context"
    x, y = _stack(adatas, genes, features, layer, context)
    model = BaselineModel(method=method, genes=genes, features=features, n_features=x.shape[1], context=context)
    kw = {"genes": genes, "features": features, "layer": layer, "context": context}
    if method == "mean":
        model.mean = y.mean(axis=0)
        return model
    if method in ("ridge", "ridge_context"):
        alpha, scores = (alphas[0], {}) if len(alphas) == 1 else choose_by_inner_validation(
            adatas, alphas, _ridge, **kw)
        model.estimator, model.params = _ridge(alpha), {"alpha": alpha, "inner_pcc": scores}
    elif method == "knn":
        k, scores = (neighbors[0], {}) if len(neighbors) == 1 else choose_by_inner_validation(
            adatas, neighbors, _knn, cap=lambda v, n: min(v, n), **kw)
        k = min(k, x.shape[0])
        model.estimator, model.params = _knn(k), {"n_neighbors": k, "inner_pcc": scores}
    else:  # hest_probe
        n_pc = int(min(n_components, x.shape[0], x.shape[1]))
        model.estimator = _hest_probe(n_pc, len(genes), seed)
        model.params = {"n_components": n_pc, "alpha": 100.0 / (n_pc * len(genes))}
    model.estimator.fit(x, y)
    return model
