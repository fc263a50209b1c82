"""Plots. Each returns matplotlib objects and never calls ``plt.show()``.

Single-panel plots (:func:`cv_summary`, :func:`training_history`, :func:`nuclei`) draw on
``ax=`` when given and return that Axes; multi-panel plots (:func:`spatial_pred`,
:func:`gene_correlation`) return their Figure.
"""

from ._correlation import gene_correlation
from ._cv import cv_summary
from ._history import training_history
from ._nuclei import nuclei
from ._spatial import spatial_pred

__all__: list[str] = ["nuclei", "training_history", "spatial_pred", "gene_correlation", "cv_summary"]
