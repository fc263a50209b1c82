"""Streaming prediction: a section of any size, block by block, equal to the full-batch forward.

The GAT layers are local (a spot's layer-``l`` embedding depends on its ``l``-hop
neighbourhood), but the inter-modal attention β of each layer (Eq. 3) is a mean over all
spots of the section. So prediction runs in passes over the blocks of
:mod:`sthisto.tl._batches`:

1. for each layer ``l``: compute the first ``l - 1`` layers on each block with an
   ``(l - 1)``-hop halo (using the β already known), project its core spots with layer
   ``l``'s ``Q_m`` and add up their per-spot cosines; β_l is the softmax of the sum over
   the section divided by the number of spots — what the whole-section forward computes;
2. run the whole module on each block with an ``L``-hop halo and these β, writing the
   core rows of Ẑ into the output.

Memory is bounded by a block and its halo (plus the (N, C) output), whatever the section
size; no N×N matrix is formed. Layer 1 is computed ``L`` times over (two passes for the
default two layers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._batches import Block

#: sections with more spots are predicted in blocks when no ``batch_size`` is given (and
#: full-batch training of them warns)
STREAM_MIN_SPOTS = 50_000
#: block size of streamed prediction when no ``batch_size`` is given
STREAM_BATCH_SIZE = 16_384


def stream_batch_size(batch_size: int | None, n_spots: int) -> int | None:
    """Return the block size to stream a section of ``n_spots`` with (``None``: the whole section at once)."""
    if batch_size is not None:
        from sthisto._validate import integer

        return integer(batch_size, "batch_size", minimum=1, fix="or None to choose by section size")
    return STREAM_BATCH_SIZE if n_spots > STREAM_MIN_SPOTS else None


def gather_rows(xs: Sequence[np.ndarray], nodes: np.ndarray, device) -> list:
    """Return the rows ``nodes`` of each host feature block as a tensor on ``device`` (one block's inputs)."""
    import torch

    return [torch.as_tensor(np.ascontiguousarray(x[nodes]), device=device) for x in xs]


def section_betas(member, xs: Sequence[np.ndarray], blocks: Sequence[Block], device) -> list:
    """Return the inter-modal attention β of every layer of ``member`` over the whole section."""
    import torch

    from sthisto.module._mmge import cosine_sums

    encoder = member.encoder
    betas: list = []
    n_spots = sum(b.n_core for b in blocks)
    for k, layer in enumerate(encoder.layers):
        if layer.inter is None:
            betas.append(None)
            continue
        total = None
        for b in blocks:
            nodes, ei = b.prefix(k)
            hs = encoder.hidden(gather_rows(xs, nodes, device), torch.as_tensor(ei, device=device), k, betas)
            s = cosine_sums(layer.inter.project([h[: b.n_core] for h in hs]))
            total = s if total is None else total + s
        betas.append(torch.softmax(total / n_spots, dim=1))
    return betas


def stream_predict(module, xs: Sequence[np.ndarray], blocks: Sequence[Block], device,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Model outputs Ẑ of a section (training scale), block by block, in eval mode.

    Parameters
    ----------
    module
        An :class:`~sthisto.module.M2TGLGOModule` or an :class:`~sthisto.module.Ensemble`
        of them (the mean of the members' outputs).
    xs
        The section's scaled (N, d_m) feature blocks (numpy, on the host).
    blocks
        The section's blocks with a halo of at least as many hops as the module has layers.
    device
        Torch device of ``module``.
    out
        An (N, C) float32 array to write into (e.g. a memory map); allocated when ``None``.

    Returns
    -------
    ``out``.
    """
    import torch

    members = list(module.members) if hasattr(module, "members") else [module]
    n = sum(b.n_core for b in blocks)
    n_layers = len(members[0].encoder.layers)
    if any(len(b.hop_counts) <= n_layers for b in blocks):
        raise ValueError(f"streaming prediction needs blocks with a {n_layers}-hop halo")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for j, member in enumerate(members):
                betas = section_betas(member, xs, blocks, device)
                for b in blocks:
                    nodes, ei = b.prefix(n_layers)
                    z = member(gather_rows(xs, nodes, device), torch.as_tensor(ei, device=device), betas)[1]
                    z = z[: b.n_core].float().cpu().numpy()
                    if out is None:
                        out = np.zeros((n, z.shape[1]), dtype=np.float32)
                    if j == 0:
                        out[b.core] = z
                    else:
                        out[b.core] += z
            if len(members) > 1:
                out /= len(members)
    finally:
        module.train(was_training)
    return out
