"""One training run of an M2TGLGO module: epochs, validation curve, early stopping.

Full batch per section by default: one AdamW step per training section, sections visited
in a seeded random order each epoch. With ``batch_size`` the items are the spatial blocks
of every section (:mod:`sthisto.tl._batches`, with the halo the GAT layers need) and
validation streams (:mod:`sthisto.tl._stream`). Under ``torch.distributed`` the items of
an epoch are split across ranks and gradients averaged (:mod:`sthisto.tl._distributed`).
:func:`sthisto.tl.fit` calls :func:`train_module` for the inner-validation runs and for
each ensemble member.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sthisto._logging import logger

from . import _distributed
from ._data import MAX_HOP
from ._metrics import mean_pearson
from ._preprocessing import SectionData
from ._stream import gather_rows


@dataclass
class TrainResult:
    """What one run leaves besides the trained weights."""

    history: list[dict] = field(default_factory=list)  # one row per epoch
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, validation PCC)
    best_epoch: int | None = None


def predict_sections(module, sections: Sequence[SectionData], device, blocks=None) -> list[np.ndarray]:
    """Model outputs (training scale) of each section, in eval mode, without gradients.

    With ``blocks`` (one list of :class:`~sthisto.tl._batches.Block` per section) each
    section is streamed block by block (:func:`sthisto.tl._stream.stream_predict`).
    """
    import torch

    if blocks is not None:
        from ._stream import stream_predict

        return [stream_predict(module, s.features, b, device) for s, b in zip(sections, blocks, strict=True)]
    was_training = module.training
    module.eval()
    out = []
    with torch.no_grad():
        for s in sections:
            xs, ei, _, _ = s.tensors(device)
            out.append(module(xs, ei)[1].float().cpu().numpy())
    module.train(was_training)
    return out


def validation_pcc(module, sections: Sequence[SectionData], device, blocks=None) -> float:
    """Mean over sections of the mean per-gene PCC (PCC ignores the target scaling)."""
    preds = predict_sections(module, sections, device, blocks)
    return float(np.mean([mean_pearson(s.target, p) for s, p in zip(sections, preds, strict=True)]))


class _BlockItem:
    """One spatial block of a training section: gathers its inputs when its step comes."""

    def __init__(self, section: SectionData, block, rings: bool) -> None:
        from ._batches import block_rings

        self.section, self.block = section, block
        self.nodes, self.edge_index = block.nodes, block.edge_index  # core + the whole halo
        self.rings = block_rings(block, MAX_HOP) if rings else None

    def tensors(self, device):
        import torch

        xs = gather_rows(self.section.features, self.nodes, device)
        ei = torch.as_tensor(self.edge_index, device=device)
        rings = None if self.rings is None else torch.as_tensor(self.rings, device=device)
        target = torch.as_tensor(np.ascontiguousarray(self.section.target[self.block.core]), device=device)
        return xs, ei, rings, target, self.block.n_core


def training_items(sections: Sequence[SectionData], *, batch_size: int | None, hops: int, rings: bool,
                   device) -> list:
    """Return what one optimiser step (per rank) consumes: whole sections, or the blocks of every section.

    Whole sections are moved to ``device`` once; blocks are gathered step by step, so
    memory is bounded by a block and its halo.
    """
    if batch_size is None:
        return [(*s.tensors(device), None) for s in sections]
    return [_BlockItem(s, b, rings) for s in sections for b in s.blocks(batch_size, hops)]


def train_module(
    module,
    sections: Sequence[SectionData],
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    seed: int,
    device,
    val: Sequence[SectionData] | None = None,
    eval_every: int = 1,
    early_stopping: bool = False,
    patience: int = 50,
    batch_size: int | None = None,
    on_epoch=None,
) -> TrainResult:
    """Train ``module`` in place for ``epochs`` epochs; return its history and validation curve.

    Parameters
    ----------
    module
        An :class:`sthisto.module.M2TGLGOModule` on ``device``.
    sections
        Training sections with targets (and hop rings when the ranking loss is on).
    epochs, lr, weight_decay
        Number of epochs and AdamW settings.
    seed
        Seeds the section order, the DropEdge draws and the sampled reconstruction pairs.
    device
        Torch device of ``module``.
    val
        Validation sections with targets: their mean per-gene PCC is scored every
        ``eval_every`` epochs (and at the last epoch) into ``curve`` and ``history``.
    early_stopping, patience
        Stop when the validation PCC has not improved for ``patience`` epochs and restore
        the best weights.
    batch_size
        ``None``: one step per section (full batch). Otherwise one step per spatial block
        of at most ``batch_size`` core spots (with the halo the layers need); the losses
        are defined on each block's core, and validation streams block by block.
    on_epoch
        Called with the history row after every epoch (progress display).
    """
    import torch

    rank, world_size = _distributed.world()
    if rank:  # other ranks draw other DropEdge / dropout / pair samples
        torch.manual_seed(_distributed.rank_seed(seed, rank))
    loss_fn = _distributed.loss_function(module)  # broadcasts rank 0's weights when distributed
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
    gen = torch.Generator(device=device).manual_seed(_distributed.rank_seed(seed, rank))
    order = np.random.default_rng(seed)  # the same on every rank: the epoch's schedule
    hops = len(module.encoder.layers)
    items = training_items(sections, batch_size=batch_size, hops=hops, rings=module.needs_rings, device=device)
    val_blocks = None if batch_size is None or not val else [s.blocks(batch_size, hops) for s in val]
    result = TrainResult()
    best, best_state, stale = -np.inf, None, 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        module.train()
        sums: dict[str, float] = {}
        steps = _distributed.schedule(order.permutation(len(items)), world_size)
        for step in steps:
            item = items[step[rank]]
            xs, ei, rings, target, n_core = item if isinstance(item, tuple) else item.tensors(device)
            opt.zero_grad(set_to_none=True)
            total, parts = loss_fn(xs, ei, target, rings, generator=gen, n_core=n_core)
            if not torch.isfinite(total):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}: {parts}; lower lr")
            total.backward()
            opt.step()
            parts["loss"] = float(total.detach())
            for name, v in parts.items():
                sums[name] = sums.get(name, 0.0) + v / len(steps)
        row = {"epoch": epoch, **sums, "time_s": time.perf_counter() - t0}
        if val and (epoch % eval_every == 0 or epoch == epochs):
            row["val_pcc"] = score = validation_pcc(module, val, device, val_blocks)
            result.curve.append((epoch, score))
            if score > best:
                best, stale, result.best_epoch = score, 0, epoch
                if early_stopping:
                    best_state = {n: t.detach().clone() for n, t in module.state_dict().items()}
            else:
                stale += eval_every
        result.history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if early_stopping and stale >= patience:
            logger.info("early stopping at epoch %d (best validation PCC %.4f at epoch %d)",
                        epoch, best, result.best_epoch)
            break
    if early_stopping and best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return result
