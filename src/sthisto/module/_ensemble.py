"""An ensemble of M2TGLGO modules whose prediction is the mean of the members' predictions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Ensemble(nn.Module):
    """Average the predicted expression ``Ẑ`` of several trained modules.

    Parameters
    ----------
    members
        Modules whose ``forward(xs, edge_index)`` returns ``(H, Ẑ)``.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, xs: Sequence[torch.Tensor], edge_index: torch.Tensor) -> torch.Tensor:
        """Return the (N, C) mean of the members' predicted expression."""
        return torch.stack([m(xs, edge_index)[1] for m in self.members]).mean(0)
