"""sthisto.tl."""

from ._fit import fit
from ._model import M2TGLGO
from ._predict import predict, predict_anndata

__all__: list[str] = ["fit", "predict", "predict_anndata", "M2TGLGO"]
