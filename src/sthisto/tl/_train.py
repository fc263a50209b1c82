"""One training run of an M2TGLGO module: epochs, validation curve, early stopping.

Full batch per section: one AdamW step per training section, sections visited in a
seeded random order each epoch. :func:`sthisto.tl.fit` calls :func:`train_module` for the
inner-validation runs and for each ensemble member.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sthisto._logging import logger

from ._metrics import mean_pearson
from ._preprocessing import SectionData


@dataclass
class TrainResult:
    """What one run leaves besides the trained weights."""

    history: list[dict] = field(default_factory=list)  # one row per epoch
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, validation PCC)
    best_epoch: int | None = None


def predict_sections(module, sections: Sequence[SectionData], device) -> list[np.ndarray]:
    """Model outputs (training scale) of each section, in eval mode, without gradients."""
    import torch

    was_training = module.training
    module.eval()
    out = []
    with torch.no_grad():
        for s in sections:
            xs, ei, _, _ = s.tensors(device)
            out.append(module(xs, ei)[1].float().cpu().numpy())
    module.train(was_training)
    return out


def validation_pcc(module, sections: Sequence[SectionData], device) -> float:
    """Mean over sections of the mean per-gene PCC (PCC ignores the target scaling)."""
    preds = predict_sections(module, sections, device)
    return float(np.mean([mean_pearson(s.target, p) for s, p in zip(sections, preds, strict=True)]))


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
    on_epoch
        Called with the history row after every epoch (progress display).
    """
    import torch

    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
    gen = torch.Generator(device=device).manual_seed(int(seed))
    order = np.random.default_rng(seed)
    batches = [s.tensors(device) for s in sections]
    result = TrainResult()
    best, best_state, stale = -np.inf, None, 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        module.train()
        sums: dict[str, float] = {}
        for k in order.permutation(len(batches)):
            xs, ei, rings, target = batches[k]
            opt.zero_grad(set_to_none=True)
            total, parts = module.loss(xs, ei, target, rings, generator=gen)
            if not torch.isfinite(total):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}: {parts}; lower lr")
            total.backward()
            opt.step()
            parts["loss"] = float(total.detach())
            for name, v in parts.items():
                sums[name] = sums.get(name, 0.0) + v / len(batches)
        row = {"epoch": epoch, **sums, "time_s": time.perf_counter() - t0}
        if val and (epoch % eval_every == 0 or epoch == epochs):
            row["val_pcc"] = score = validation_pcc(module, val, device)
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
