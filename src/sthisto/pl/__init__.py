"""Plots. Each returns matplotlib objects and never calls ``plt.show()``.

Single-panel plots (:func:`cv_summary`, :func:`training_history`, :func:`nuclei_outlines`)
draw on ``ax=`` when given and return that Axes; multi-panel plots (:func:`spatial_pred`,
:func:`gene_correlation`) return their Figure.
"""

from ._correlation import gene_correlation
from ._cv import cv_summary
from ._history import training_history
from ._nuclei_outlines import nuclei_outlines
from ._spatial import spatial_pred

__all__: list[str] = ["nuclei_outlines", "training_history", "spatial_pred", "gene_correlation", "cv_summary"]


def __getattr__(name: str):
    if name == "nuclei":  # the old name, which also named the package sthisto.pp.nuclei
        import warnings

        warnings.warn("sthisto.pl.nuclei is now sthisto.pl.nuclei_outlines; the old name will be removed.",
                      FutureWarning, stacklevel=2)
        return nuclei_outlines
    raise AttributeError(f"module 'sthisto.pl' has no attribute {name!r}")
