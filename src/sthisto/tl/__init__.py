"""sthisto.tl."""

from ._baselines import fit_baseline
from ._config import M2TGLGOConfig
from ._cross_validate import cross_validate
from ._evaluate import evaluate, gene_correlation_recovery
from ._fit import fit
from ._model import M2TGLGO
from ._predict import predict, predict_anndata
from ._select_genes import select_genes

__all__: list[str] = ["fit", "predict", "predict_anndata", "M2TGLGO", "M2TGLGOConfig", "fit_baseline",
           "evaluate", "select_genes", "cross_validate", "gene_correlation_recovery"]
