"""Resolve torch devices and seeds (imports torch lazily)."""

from __future__ import annotations

import contextlib

from ._settings import _DEVICE, settings


def resolve_device(device: str | None = None):
    """Return a :class:`torch.device` for ``device`` (``None`` → ``settings.device``).

    ``"auto"`` picks CUDA when available, else CPU. Asking for CUDA on a machine without it
    raises a :class:`ValueError` instead of failing deep inside torch.
    """
    import torch

    name = str(settings.device if device is None else device).strip()
    if not _DEVICE.fullmatch(name):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps', got {device!r}.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={name!r} was requested but torch reports no CUDA device "
            f"(torch {torch.__version__}); use device='cpu' or install a CUDA build of torch."
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was requested but MPS is not available; use 'cpu'.")
    return torch.device(name)


def seed_everything(seed: int | None = None) -> int:
    """Seed python, numpy and torch; make CPU torch deterministic. Returns the seed used."""
    import random

    import numpy as np
    import torch

    seed = settings.resolve_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


@contextlib.contextmanager
def torch_threads(n_jobs: int | None = None):
    """Run a block with ``torch.set_num_threads(n_jobs)`` (``None`` → ``settings.n_jobs``).

    The M2TGLGO graphs of a section are small: intra-op threads buy little there, and on
    a machine where any other process is busy, spinning OpenMP threads made an epoch
    10–20× slower in our measurements. Training therefore uses ``settings.n_jobs`` threads
    (1 by default); pass ``n_jobs=-1`` for large sections on an otherwise idle machine.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(settings.resolve_n_jobs(n_jobs))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
