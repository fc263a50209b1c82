"""Gene head: GO-graph GAT over gene embeddings → gene matrix P; prediction ``Ẑ = H Pᵀ`` (Eq. 13)."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GATConv


class GeneHead(nn.Module):
    """Map spot embeddings H (N, d) to expression Ẑ (N, C).

    With a GO prior (``gene_embeddings`` and ``gene_edge_index`` given), ``P`` is one GAT
    layer over the gene graph whose node inputs are the (fixed) gene embeddings. Without
    it (the ablation), ``P`` is a learned (C, d) parameter matrix.

    Parameters
    ----------
    n_genes
        Number of genes C.
    out_dim
        Width d of the spot embedding H.
    gene_embeddings
        (C, e) gene embeddings, stored as a buffer; ``None`` for the learned-P ablation.
    gene_edge_index
        (2, E_g) edges of the gene graph (self loops are re-added by the GAT).
    heads
        Attention heads of the gene GAT (averaged).
    bias
        Add a learned per-gene offset, ``Ẑ = H Pᵀ + b``. Eq. 13 has none, so with a sigmoid
        H in (0, 1) every gene's mean must be carried by ``P``; the offset frees ``P`` to
        model variation around it.
    """

    def __init__(
        self,
        n_genes: int,
        out_dim: int,
        *,
        gene_embeddings: torch.Tensor | None = None,
        gene_edge_index: torch.Tensor | None = None,
        heads: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_genes)) if bias else None
        self.use_go = gene_embeddings is not None
        if self.use_go:
            if gene_edge_index is None:
                raise ValueError("gene_edge_index is required with gene_embeddings")
            if gene_embeddings.shape[0] != n_genes:
                raise ValueError(
                    f"gene_embeddings has {gene_embeddings.shape[0]} rows for {n_genes} genes"
                )
            if gene_edge_index.numel() and int(gene_edge_index.max()) >= n_genes:
                raise ValueError("gene_edge_index refers to genes beyond n_genes")
            self.register_buffer("gene_embeddings", gene_embeddings.float())
            self.register_buffer("gene_edge_index", gene_edge_index.long())
            self.gat = GATConv(
                gene_embeddings.shape[1], out_dim, heads=heads, concat=False, add_self_loops=True
            )
            self.P = None
        else:
            self.gat = None
            self.P = nn.Parameter(torch.empty(n_genes, out_dim))
            nn.init.xavier_uniform_(self.P)

    def gene_matrix(self) -> torch.Tensor:
        """Return P, the (C, d) gene matrix."""
        if self.use_go:
            return self.gat(self.gene_embeddings, self.gene_edge_index)
        return self.P

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Return ``Ẑ = H Pᵀ (+ b)`` of shape (N, C)."""
        z = h @ self.gene_matrix().T
        return z if self.bias is None else z + self.bias
