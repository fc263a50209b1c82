"""The full M2TGLGO module: MMGE encoder + gene head + the three losses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._gene_head import GeneHead
from ._losses import DENSE_RECON_MAX_SPOTS, default_quantiles, reconstruction_loss, sonrm_loss
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
        Widths of the MMGE layers (the paper: 256 then 512); the last is the width of H.
    gamma
        Within/inter-modal mixing weight γ (Eq. 5).
    use_within, use_inter
        Keep the within-modal GATs / the inter-modal attention.
    use_ranking, use_recon
        Keep the SONRM ranking loss / the reconstruction loss.
    gene_embeddings, gene_edge_index
        GO prior for the gene head; ``None`` → learned P (the GO ablation).
    n_quantiles, epsilon
        SONRM quantile count and margin.
    loss_weights
        Weights of ``"gene"``, ``"ranking"``, ``"recon"`` (default 1 each).
    dense_recon_max_spots
        Above this many spots the reconstruction loss samples pairs.
    heads
        GAT attention heads (averaged).
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        n_genes: int,
        *,
        hidden_dims: Sequence[int] = (256, 512),
        gamma: float = 0.6,
        use_within: bool = True,
        use_inter: bool = True,
        use_ranking: bool = True,
        use_recon: bool = True,
        gene_embeddings: torch.Tensor | None = None,
        gene_edge_index: torch.Tensor | None = None,
        n_quantiles: int = 4,
        epsilon: float = 0.01,
        loss_weights: Mapping[str, float] | None = None,
        dense_recon_max_spots: int = DENSE_RECON_MAX_SPOTS,
        heads: int = 1,
    ) -> None:
        super().__init__()
        self.encoder = MMGE(
            in_dims, hidden_dims, gamma=gamma, use_within=use_within, use_inter=use_inter, heads=heads
        )
        self.gene_head = GeneHead(
            n_genes,
            self.encoder.out_dim,
            gene_embeddings=gene_embeddings,
            gene_edge_index=gene_edge_index,
            heads=heads,
        )
        self.use_ranking = bool(use_ranking)
        self.use_recon = bool(use_recon)
        self.epsilon = float(epsilon)
        self.register_buffer("quantiles", default_quantiles(n_quantiles), persistent=False)
        weights = dict.fromkeys(LOSS_NAMES, 1.0)
        unknown = set(loss_weights or {}) - set(LOSS_NAMES)
        if unknown:
            raise ValueError(f"unknown loss_weights keys {sorted(unknown)}; use {LOSS_NAMES}")
        weights.update({k: float(v) for k, v in (loss_weights or {}).items()})
        self.loss_weights = weights
        self.dense_recon_max_spots = int(dense_recon_max_spots)

    def forward(
        self, xs: Sequence[torch.Tensor], edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(H, Ẑ)``: the (N, d) spot embedding and the (N, C) predicted expression."""
        h = self.encoder(xs, edge_index)
        return h, self.gene_head(h)

    def loss(
        self,
        xs: Sequence[torch.Tensor],
        edge_index: torch.Tensor,
        target: torch.Tensor,
        rings: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the weighted total loss and its unweighted components (floats)."""
        h, z_hat = self(xs, edge_index)
        parts = {"gene": F.mse_loss(z_hat, target)}
        if self.use_ranking:
            if rings is None:
                raise ValueError("the ranking loss needs hop rings")
            parts["ranking"] = sonrm_loss(h, rings, quantiles=self.quantiles, epsilon=self.epsilon)
        if self.use_recon:
            parts["recon"] = reconstruction_loss(
                h, edge_index, dense_max_spots=self.dense_recon_max_spots, generator=generator
            )
        total = sum(self.loss_weights[k] * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}
