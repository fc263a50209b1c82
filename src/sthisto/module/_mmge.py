"""Multi-modal graph encoder (MMGE): within-modal GAT, inter-modal attention, γ mixing, fusion.

Tensors only. Notation follows the M2TGLGO paper: ``x[m]`` is the (N, d_m) feature matrix
of modality ``m``, ``edge_index`` the (2, E) spot graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATConv


class WithinModal(nn.Module):
    """Within-modal attention, Eq. 1: ``h_i = σ(Σ_j α_ij W x_j)`` with a GAT layer (ELU as σ)."""

    def __init__(self, in_dim: int, out_dim: int, *, heads: int = 1) -> None:
        super().__init__()
        self.gat = GATConv(in_dim, out_dim, heads=heads, concat=False, add_self_loops=True)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Return the (N, out_dim) within-modal embedding."""
        return F.elu(self.gat(x, edge_index))


def cosine_sums(projected: Sequence[torch.Tensor]) -> torch.Tensor:
    """``S[m, n] = Σ_i cos(X'_m[i], X'_n[i])``: the per-spot cosines summed over spots, (M, M).

    Sums over disjoint sets of spots add up, so streaming prediction accumulates them block
    by block (:func:`sthisto.tl._stream.stream_predict`).
    """
    z = torch.stack([F.normalize(p, dim=1) for p in projected])  # (M, N, d)
    return torch.einsum("mnd,knd->mk", z, z)


def modality_scores(projected: Sequence[torch.Tensor]) -> torch.Tensor:
    """Scaled inter-modal score ``s(X'_m, X'_n)``: the mean over spots of per-spot cosine.

    The paper's raw trace ``tr(X'_m X'_nᵀ)`` grows with N and the width and overflows
    ``exp`` in the softmax; the mean cosine lies in [-1, 1] (what the authors' code does).

    Returns
    -------
    A (M, M) score matrix.
    """
    return cosine_sums(projected) / projected[0].shape[0]


class InterModal(nn.Module):
    """Inter-modal attention, Eqs. 2–4.

    ``X'_m = ReLU(X_m Q_m)``, ``β_{m,·} = softmax_n s(X'_m, X'_n)``,
    ``H^IT_m = Σ_k β_{m,k} X'_k``.
    """

    def __init__(self, in_dims: Sequence[int], out_dim: int) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(d, out_dim, bias=False) for d in in_dims)

    def project(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``X'_m = ReLU(X_m Q_m)`` per modality (Eq. 2), row by row."""
        return [F.relu(q(x)) for q, x in zip(self.proj, xs, strict=True)]

    def forward(
        self, xs: Sequence[torch.Tensor], beta: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Return the per-modality inter-modal embeddings and the (M, M) attention β.

        ``beta`` given (the section's β, when a block of it is computed) replaces the β of
        the spots in ``xs``.
        """
        projected = self.project(xs)
        if beta is None:
            beta = torch.softmax(modality_scores(projected), dim=1)
        stacked = torch.stack(projected)  # (M, N, d)
        mixed = torch.einsum("mk,knd->mnd", beta, stacked)
        return list(mixed.unbind(0)), beta


class MMGELayer(nn.Module):
    """One MMGE layer: ``H_m = γ H^WI_m + (1 − γ) H^IT_m`` (Eq. 5).

    With ``use_within=False`` the within-modal GATs are absent and ``H_m = H^IT_m``; with
    ``use_inter=False`` the projections are absent and ``H_m = H^WI_m``.
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        out_dim: int,
        *,
        gamma: float,
        use_within: bool = True,
        use_inter: bool = True,
        heads: int = 1,
    ) -> None:
        super().__init__()
        if not (use_within or use_inter):
            raise ValueError("at least one of use_within and use_inter must be True")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
        self.gamma = float(gamma)
        self.within = (
            nn.ModuleList(WithinModal(d, out_dim, heads=heads) for d in in_dims) if use_within else None
        )
        self.inter = InterModal(in_dims, out_dim) if use_inter else None

    def forward(
        self, xs: Sequence[torch.Tensor], edge_index: torch.Tensor, beta: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Return the per-modality (N, out_dim) embeddings (``beta``: see :meth:`InterModal.forward`)."""
        wi = [g(x, edge_index) for g, x in zip(self.within, xs, strict=True)] if self.within else None
        it = self.inter(xs, beta)[0] if self.inter is not None else None
        if wi is None:
            return it
        if it is None:
            return wi
        return [self.gamma * a + (1.0 - self.gamma) * b for a, b in zip(wi, it, strict=True)]


#: activation of the fused embedding H (Eq. 6 uses the sigmoid)
EMBEDDING_ACTIVATIONS = {"sigmoid": torch.sigmoid, "identity": lambda z: z}


class MMGE(nn.Module):
    """Stack of MMGE layers and the fusion ``H = σ(W_S · concat_m H_m)`` (Eq. 6).

    Parameters
    ----------
    in_dims
        Feature width of each modality.
    hidden_dims
        Widths of the MMGE layers; the last is the width of H.
    gamma, use_within, use_inter, heads
        See :class:`MMGELayer`.
    dropout
        Dropout rate on the modality inputs and on every layer's output (training only);
        0 is the paper's model.
    activation
        Activation σ of the fused embedding: ``"sigmoid"`` (Eq. 6) or ``"identity"``.
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        hidden_dims: Sequence[int],
        *,
        gamma: float,
        use_within: bool = True,
        use_inter: bool = True,
        heads: int = 1,
        dropout: float = 0.0,
        activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        if len(in_dims) == 0:
            raise ValueError("at least one modality is required")
        if len(hidden_dims) == 0:
            raise ValueError("hidden_dims must hold at least one layer width")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if activation not in EMBEDDING_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(EMBEDDING_ACTIVATIONS)}, got {activation!r}")
        self.dropout = float(dropout)
        self.activation = activation
        dims = [list(in_dims)] + [[h] * len(in_dims) for h in hidden_dims[:-1]]
        self.layers = nn.ModuleList(
            MMGELayer(d, h, gamma=gamma, use_within=use_within, use_inter=use_inter, heads=heads)
            for d, h in zip(dims, hidden_dims, strict=True)
        )
        self.fusion = nn.Linear(len(in_dims) * hidden_dims[-1], hidden_dims[-1])
        self.out_dim = int(hidden_dims[-1])

    def _drop(self, hs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [F.dropout(h, self.dropout, self.training) for h in hs]

    def hidden(
        self,
        xs: Sequence[torch.Tensor],
        edge_index: torch.Tensor,
        n_layers: int,
        betas: Sequence[torch.Tensor | None] | None = None,
    ) -> list[torch.Tensor]:
        """Per-modality outputs of the first ``n_layers`` MMGE layers (``betas``: one per layer)."""
        hs = self._drop(xs)
        for k, layer in enumerate(self.layers[:n_layers]):
            hs = self._drop(layer(hs, edge_index, None if betas is None else betas[k]))
        return hs

    def forward(
        self,
        xs: Sequence[torch.Tensor],
        edge_index: torch.Tensor,
        betas: Sequence[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """Return the fused (N, hidden_dims[-1]) spot embedding H (in (0, 1) for the sigmoid).

        ``betas`` (one (M, M) β or ``None`` per layer) fixes the inter-modal attention, as
        when a block of a larger section is computed with the section's β; by default β is
        that of the spots given.
        """
        hs = self.hidden(xs, edge_index, len(self.layers), betas)
        return EMBEDDING_ACTIVATIONS[self.activation](self.fusion(torch.cat(hs, dim=1)))
