"""sthisto.pl."""

from ._correlation import gene_correlation
from ._cv import cv_summary
from ._history import training_history
from ._nuclei import nuclei
from ._spatial import spatial_pred

__all__: list[str] = ["nuclei", "training_history", "spatial_pred", "gene_correlation", "cv_summary"]
