"""Graph augmentation used while training: DropEdge on the undirected spot graph."""

from __future__ import annotations

import torch


def drop_edges(edge_index: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop a fraction ``p`` of the undirected edges of a symmetric ``(2, E)`` edge list.

    Both directions of an edge are kept or dropped together, so the graph stays
    symmetric. ``p = 0`` returns ``edge_index`` itself.
    """
    if p <= 0.0 or edge_index.numel() == 0:
        return edge_index
    i, j = edge_index[0], edge_index[1]
    n = int(edge_index.max()) + 1
    key = torch.minimum(i, j) * n + torch.maximum(i, j)
    pairs, which = torch.unique(key, return_inverse=True)
    keep = torch.rand(pairs.numel(), generator=generator, device=edge_index.device) >= p
    return edge_index[:, keep[which]]
