"""Inner validation splits of the training sections: the only data any model choice may see.

M2TGLGO's number of epochs and the baselines' ``alpha`` / ``k`` are chosen on these
splits, inside :func:`sthisto.tl.fit`, the baselines and every fold of
:func:`sthisto.tl.cross_validate`, so a test section never informs a choice.

* two or more training sections: leave one training section out (one split per section);
* one training section: its two spatial halves, split at the median of the longer axis
  of ``obsm['spatial']``, each validating a model fitted on the other (the spot graph is
  cut along the split, so no spot sees a neighbour across it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from sthisto import _constants as K

MIN_HALF_SPOTS = 7  # each half must hold a 6-NN neighbourhood


def spatial_halves(adata: AnnData, *, spatial_key: str = K.SPATIAL_KEY) -> tuple[AnnData, AnnData]:
    """Split a section at the median of the longer axis of its spot coordinates."""
    if spatial_key not in adata.obsm:
        raise KeyError(f"adata.obsm[{spatial_key!r}] (spot coordinates) is missing; inner validation of a "
                       "single training section splits it spatially.")
    xy = np.asarray(adata.obsm[spatial_key], dtype=np.float64)[:, :2]
    axis = int(np.argmax(np.ptp(xy, axis=0)))
    order = np.argsort(xy[:, axis], kind="stable")
    first = np.zeros(adata.n_obs, dtype=bool)
    first[order[: adata.n_obs // 2]] = True
    if min(first.sum(), (~first).sum()) < MIN_HALF_SPOTS:
        raise ValueError(f"a single training section of {adata.n_obs} spots is too small to split for inner "
                         f"validation (each half needs {MIN_HALF_SPOTS}); give more sections or "
                         "epoch_selection='fixed'.")
    return adata[first].copy(), adata[~first].copy()


def inner_splits(sections: Sequence[AnnData]) -> list[tuple[list[AnnData], list[AnnData]]]:
    """``[(fit sections, validation sections)]`` over the training sections (see module doc)."""
    sections = list(sections)
    if len(sections) >= 2:
        return [([s for j, s in enumerate(sections) if j != i], [sections[i]]) for i in range(len(sections))]
    a, b = spatial_halves(sections[0])
    return [([a], [b]), ([b], [a])]
