"""sthisto.module: pure torch / torch_geometric modules of M2TGLGO (tensors only, no AnnData).

The split follows scvi-tools: ``sthisto.module`` holds the ``nn.Module`` s, the model
object that owns AnnData handling, training and save/load is :class:`sthisto.tl.M2TGLGO`.
Importing this namespace imports torch; :mod:`sthisto.tl` imports it only inside functions.
"""

from ._augment import drop_edges
from ._ensemble import Ensemble
from ._gene_head import GeneHead
from ._losses import (
    RANKING_FORMS,
    RECON_FORMS,
    balanced_reconstruction_loss,
    centred_sonrm_loss,
    default_quantiles,
    reconstruction_loss,
    sonrm_loss,
)
from ._m2tglgo import M2TGLGOModule
from ._mmge import MMGE, InterModal, MMGELayer, WithinModal, modality_scores

__all__ = [
    "M2TGLGOModule",
    "Ensemble",
    "MMGE",
    "MMGELayer",
    "WithinModal",
    "InterModal",
    "modality_scores",
    "GeneHead",
    "sonrm_loss",
    "reconstruction_loss",
    "centred_sonrm_loss",
    "balanced_reconstruction_loss",
    "default_quantiles",
    "RANKING_FORMS",
    "RECON_FORMS",
    "drop_edges",
]
