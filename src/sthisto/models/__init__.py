"""sthisto.models: pure torch / torch_geometric modules of M2TGLGO (tensors only, no AnnData).

Importing this namespace imports torch; :mod:`sthisto.tl` imports it only inside functions.
"""

from ._gene_head import GeneHead
from ._losses import default_quantiles, reconstruction_loss, sonrm_loss
from ._m2tglgo import M2TGLGOModule
from ._mmge import MMGE, InterModal, MMGELayer, WithinModal, modality_scores

__all__ = [
    "M2TGLGOModule",
    "MMGE",
    "MMGELayer",
    "WithinModal",
    "InterModal",
    "modality_scores",
    "GeneHead",
    "sonrm_loss",
    "reconstruction_loss",
    "default_quantiles",
]
