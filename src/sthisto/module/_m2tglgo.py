"""The full M2TGLGO module: MMGE encoder + gene head + the training losses.

The module has no defaults of its own: :class:`sthisto.tl.M2TGLGOConfig` holds every
default once and :func:`sthisto.tl._model.build_module` maps a config onto these arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._augment import drop_edges
from ._gene_head import GeneHead
from ._losses import RANKING_FORMS, RECON_FORMS, default_quantiles
from ._mmge import MMGE

LOSS_NAMES = ("gene", "ranking", "recon")


class M2TGLGOModule(nn.Module):
    """Multi-modal topology-embedded graph learning with Gene Ontology knowledge.

    Sees tensors only: a list of (N, d_m) modality features, the (2, E) spot graph and,
    for the ranking loss, (N, K, R) padded hop rings.

    Parameters
    ----------
    in_dims
        Feature width of each modality, in order.
    n_genes
        Number of predicted genes.
    hidden_dims
        Widths of the MMGE layers; the last is the width of H.
    gamma
        Within/inter-modal mixing weight γ (Eq. 5).
    heads
        GAT attention heads (averaged).
    use_within, use_inter
        Keep the within-modal GATs / the inter-modal attention.
    dropout
        Dropout on the modality inputs and MMGE layer outputs while training.
    edge_dropout
        Fraction of (undirected) spot-graph edges dropped at each training step (DropEdge).
    activation
        Activation of the fused embedding H (``"sigmoid"``: Eq. 6).
    gene_bias
        Learned per-gene offset in the gene head.
    gene_embeddings, gene_edge_index
        GO prior for the gene head; ``None`` → learned P (the GO ablation).
    loss_weights
        Weight of each loss term; a term absent from the mapping (or weighted 0) is not
        computed. Keys: ``"gene"`` (MSE, required), ``"ranking"`` (SONRM, Eq. 9) and
        ``"recon"`` (adjacency reconstruction, Eqs. 7–8).
    ranking_form, recon_form
        Which form of the auxiliary losses (see :data:`RANKING_FORMS`, :data:`RECON_FORMS`).
    n_quantiles, epsilon
        SONRM quantile count and margin.
    dense_recon_max_spots
        Above this many spots the reconstruction loss samples pairs.
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        n_genes: int,
        *,
        hidden_dims: Sequence[int],
        gamma: float,
        heads: int,
        use_within: bool,
        use_inter: bool,
        dropout: float,
        edge_dropout: float,
        activation: str,
        gene_bias: bool,
        gene_embeddings: torch.Tensor | None,
        gene_edge_index: torch.Tensor | None,
        loss_weights: Mapping[str, float],
        ranking_form: str,
        recon_form: str,
        n_quantiles: int,
        epsilon: float,
        dense_recon_max_spots: int,
    ) -> None:
        super().__init__()
        unknown = set(loss_weights) - set(LOSS_NAMES)
        if unknown:
            raise ValueError(f"unknown loss_weights keys {sorted(unknown)}; use {LOSS_NAMES}")
        if not loss_weights.get("gene"):
            raise ValueError("loss_weights['gene'] must be positive: the gene loss is what is predicted")
        if ranking_form not in RANKING_FORMS:
            raise ValueError(f"ranking_form must be one of {sorted(RANKING_FORMS)}, got {ranking_form!r}")
        if recon_form not in RECON_FORMS:
            raise ValueError(f"recon_form must be one of {sorted(RECON_FORMS)}, got {recon_form!r}")
        if not 0.0 <= edge_dropout < 1.0:
            raise ValueError(f"edge_dropout must lie in [0, 1), got {edge_dropout}")
        self.encoder = MMGE(
            in_dims, hidden_dims, gamma=gamma, use_within=use_within, use_inter=use_inter,
            heads=heads, dropout=dropout, activation=activation,
        )
        self.gene_head = GeneHead(
            n_genes,
            self.encoder.out_dim,
            gene_embeddings=gene_embeddings,
            gene_edge_index=gene_edge_index,
            heads=heads,
            bias=gene_bias,
        )
        self.loss_weights = {k: float(v) for k, v in loss_weights.items() if float(v) != 0.0}
        self.ranking_form, self.recon_form = ranking_form, recon_form
        self.epsilon = float(epsilon)
        self.edge_dropout = float(edge_dropout)
        self.dense_recon_max_spots = int(dense_recon_max_spots)
        self.register_buffer("quantiles", default_quantiles(n_quantiles), persistent=False)

    @property
    def needs_rings(self) -> bool:
        """Whether the losses need hop rings (the ranking loss is on)."""
        return "ranking" in self.loss_weights

    def forward(
        self,
        xs: Sequence[torch.Tensor],
        edge_index: torch.Tensor,
        betas: Sequence[torch.Tensor | None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(H, Ẑ)``: the (N, d) spot embedding and the (N, C) predicted expression.

        ``betas``: the inter-modal attention of each layer, fixed (see :meth:`MMGE.forward`).
        """
        h = self.encoder(xs, edge_index, betas)
        return h, self.gene_head(h)

    def loss(
        self,
        xs: Sequence[torch.Tensor],
        edge_index: torch.Tensor,
        target: torch.Tensor,
        rings: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        n_core: int | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the weighted total loss and its unweighted components (floats).

        The encoder sees the spot graph after DropEdge (when ``edge_dropout > 0``); the
        reconstruction loss targets the full graph.

        With ``n_core`` (a spatial block of a section: :mod:`sthisto.tl._batches`), the
        first ``n_core`` spots are the block's core and the rest its halo: every loss is
        defined on the core only (``target`` and ``rings`` hold core rows, ring members
        index core spots, the reconstruction uses the edges among core spots), while the
        encoder sees the halo too, so the core embeddings are those of the whole section.
        """
        seen = drop_edges(edge_index, self.edge_dropout, generator) if self.training else edge_index
        h, z_hat = self(xs, seen)
        if n_core is not None:
            h, z_hat = h[:n_core], z_hat[:n_core]
            edge_index = edge_index[:, (edge_index[0] < n_core) & (edge_index[1] < n_core)]
        parts = {"gene": F.mse_loss(z_hat, target)}
        if "ranking" in self.loss_weights:
            if rings is None:
                raise ValueError("the ranking loss needs hop rings")
            parts["ranking"] = RANKING_FORMS[self.ranking_form](
                h, rings, quantiles=self.quantiles, epsilon=self.epsilon
            )
        if "recon" in self.loss_weights and h.shape[0] < 2:  # a one-spot block has no pairs
            parts["recon"] = h.sum() * 0.0
        elif "recon" in self.loss_weights:
            parts["recon"] = RECON_FORMS[self.recon_form](
                h, edge_index, dense_max_spots=self.dense_recon_max_spots, generator=generator
            )
        total = sum(self.loss_weights[k] * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}
