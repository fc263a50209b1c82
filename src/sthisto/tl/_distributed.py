"""Data-parallel training with ``torch.distributed``: ranks, the step schedule, the DDP wrapper.

When a process group is initialised (``torchrun`` sets the environment and the training
script calls :func:`torch.distributed.init_process_group`), :func:`sthisto.tl.fit` splits
each epoch's training items (whole sections, or spatial blocks with ``batch_size``) across
the ranks: a global optimiser step takes one item per rank, and
:class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients, so a step
equals one single-process step on the mean loss of those items. Every rank ends with the
same weights; only rank 0 writes files (:meth:`sthisto.tl.M2TGLGO.save`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return 0, 1


def is_main_process() -> bool:
    """Whether this process is rank 0 (or not distributed): the one that writes files."""
    return world()[0] == 0


def schedule(order: Sequence[int], world_size: int) -> list[list[int]]:
    """Global steps of an epoch: consecutive groups of ``world_size`` items of ``order``.

    The last group is completed with the first items of ``order`` (as
    :class:`torch.utils.data.DistributedSampler` pads), so every rank takes as many steps.
    With one process every step is one item, in ``order``.
    """
    order = [int(i) for i in order]
    n_steps = -(-len(order) // world_size)
    padded = [order[i % len(order)] for i in range(n_steps * world_size)]
    return [padded[s * world_size:(s + 1) * world_size] for s in range(n_steps)]


def rank_seed(seed: int, rank: int) -> int:
    """Return the seed of the random draws (DropEdge, dropout, sampled pairs) on ``rank``; rank 0 keeps ``seed``."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0])


def loss_function(module):
    """``module.loss``, through a DDP wrapper when distributed (gradients all-reduced in backward)."""
    _, size = world()
    if size == 1:
        return module.loss
    import torch
    from torch.nn.parallel import DistributedDataParallel

    class _Loss(torch.nn.Module):  # DDP hooks into forward(), so the loss is the forward
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args, **kwargs):
            return self.inner.loss(*args, **kwargs)

    dev = next(module.parameters()).device
    ids = [dev.index] if dev.type == "cuda" and dev.index is not None else None
    return DistributedDataParallel(_Loss(module), device_ids=ids, forward_sync_buffers=False)  # constant buffers
