"""Baselines run by the same harness as M2TGLGO: same features, folds, genes and targets.

* ``"ridge"``: the HEST-Benchmark linear probe — ``StandardScaler`` → ``PCA`` (256
  components, capped by the number of training spots and features) → ``Ridge`` with
  HEST's ``alpha = 100 / (n_components · n_genes)``. HEST fits without an intercept on the
  centred PCA scores; we fit the intercept, which gives the same coefficients and PCCs
  and, unlike HEST, predictions on the scale of the targets (so MSE/MAE are meaningful).
* ``"knn"``: k-nearest-neighbour regression on the standardised features (k = 10,
  capped by the number of training spots; uniform weights).
* ``"mean"``: every spot gets the training mean of each gene. Its per-gene PCC is
  undefined (constant prediction) and reported as such; it anchors MSE/MAE.

Features are the concatenated ``obsm`` blocks of ``features`` (names from
:data:`sthisto._constants.MODALITY_KEYS`, or obsm keys), exactly as M2TGLGO reads them.
Targets are :func:`sthisto._expression.log_normalized`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from anndata import AnnData

from sthisto._expression import targets
from sthisto.tl._data import read_features

BASELINES = ("ridge", "knn", "mean")


def feature_matrix(adata: AnnData, features: Sequence[str]) -> np.ndarray:
    """Concatenate the ``obsm`` blocks named by ``features`` into one (n_obs, d) float64 array.

    Blocks are read exactly as M2TGLGO reads them (:func:`sthisto.tl._data.read_features`):
    a missing block raises a ``KeyError`` naming the function that computes it, NaN or
    infinite values a ``ValueError``.
    """
    if isinstance(features, str):
        features = [features]
    if not features:
        raise ValueError("features is empty: name at least one obsm block (e.g. 'deep').")
    blocks = read_features(adata, features)
    return np.concatenate([blocks[name] for name in features], axis=1).astype(np.float64)


@dataclass
class BaselineModel:
    """A fitted baseline: ``predict(adata)`` returns (n_obs, n_genes) on the target scale."""

    method: str
    genes: list[str]
    features: tuple[str, ...]
    estimator: Any = None
    mean: np.ndarray | None = None
    n_features: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def predict(self, adata: AnnData) -> np.ndarray:
        """Predict the model's genes for every spot of ``adata``."""
        x = feature_matrix(adata, self.features)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"the section has {x.shape[1]} feature columns, the baseline was fit on "
                f"{self.n_features}; compute features with the same settings for every section."
            )
        if self.method == "mean":
            return np.repeat(self.mean[None, :], adata.n_obs, axis=0)
        return np.asarray(self.estimator.predict(x), dtype=np.float64).reshape(adata.n_obs, -1)


def fit_baseline(
    adatas: Sequence[AnnData],
    *,
    method: str = "ridge",
    genes: Sequence[str],
    features: Sequence[str] = ("deep", "morphology", "topology"),
    layer: str | None = None,
    n_components: int = 256,
    alpha: float | None = None,
    n_neighbors: int = 10,
    seed: int = 0,
) -> BaselineModel:
    """Fit a baseline on the training sections' features and log-normalised targets.

    Parameters
    ----------
    adatas
        Training sections.
    method
        ``"ridge"``, ``"knn"`` or ``"mean"``.
    genes
        Genes to predict (present in every section).
    features
        Modality names or ``obsm`` keys, concatenated.
    layer
        Layer holding raw counts; ``None`` uses ``X``.
    n_components
        PCA components of the ridge probe (capped by spots and features).
    alpha
        Ridge penalty; ``None`` uses HEST's ``100 / (n_components · n_genes)``.
    n_neighbors
        ``k`` of the kNN baseline.
    seed
        Random state of the PCA solver.

    Returns
    -------
    A :class:`BaselineModel`.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if method not in BASELINES:
        raise ValueError(f"baseline method must be one of {BASELINES}, got {method!r}")
    if isinstance(adatas, AnnData):
        adatas = [adatas]
    genes = list(genes)
    features = (features,) if isinstance(features, str) else tuple(features)
    x = np.concatenate([feature_matrix(a, features) for a in adatas])
    y = np.concatenate([targets(a, genes, layer) for a in adatas])
    model = BaselineModel(method=method, genes=genes, features=features, n_features=x.shape[1])
    if method == "mean":
        model.mean = y.mean(axis=0)
        return model
    if method == "ridge":
        n_pc = int(min(n_components, x.shape[0], x.shape[1]))
        a = float(alpha) if alpha is not None else 100.0 / (n_pc * len(genes))
        model.estimator = make_pipeline(
            StandardScaler(),
            PCA(n_components=n_pc, svd_solver="full", random_state=seed),
            Ridge(alpha=a),
        )
        model.params = {"n_components": n_pc, "alpha": a}
    else:
        k = int(min(n_neighbors, x.shape[0]))
        model.estimator = make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=k))
        model.params = {"n_neighbors": k}
    model.estimator.fit(x, y)
    return model
