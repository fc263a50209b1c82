"""Global settings: device, seed, n_jobs, dataset directory and verbosity.

Each setting may be given by an environment variable (``STHISTO_DEVICE``, ``STHISTO_SEED``,
``STHISTO_N_JOBS``, ``STHISTO_DATA_DIR``, ``STHISTO_VERBOSITY``, ``STHISTO_PROGRESS``).
The verbosity sets the ``sthisto`` logger's level; ``progress_bar`` switches the bars of
:func:`progress`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._logging import logger

_DEVICES = ("auto", "cpu", "cuda", "mps")
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


def set_verbosity(verbosity: int, *, add_handler: bool = True) -> None:
    """Map sthisto's 0–3 verbosity onto the logger level.

    No handler is installed at import (warnings reach stderr through Python's last-resort
    handler); setting verbosity explicitly adds one stream handler so info messages show.
    """
    logger.setLevel(_LEVELS[max(0, min(3, int(verbosity)))])
    if add_handler and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("sthisto: %(message)s"))
        logger.addHandler(handler)


class Settings:
    """Process-wide defaults that functions use when their own argument is ``None``."""

    def __init__(self) -> None:
        self.device = os.environ.get("STHISTO_DEVICE", "auto")
        self.seed = int(os.environ.get("STHISTO_SEED", "0"))
        self.n_jobs = int(os.environ.get("STHISTO_N_JOBS", "1"))
        self._datasetdir: Path | None = None
        if "STHISTO_DATA_DIR" in os.environ:
            self.datasetdir = os.environ["STHISTO_DATA_DIR"]
        self._verbosity = int(os.environ.get("STHISTO_VERBOSITY", "1"))
        set_verbosity(self._verbosity, add_handler=False)
        self.progress_bar = os.environ.get("STHISTO_PROGRESS", "1") not in ("0", "false", "False")

    @property
    def device(self) -> str:
        """Torch device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda[:i]"`` or ``"mps"``."""
        return self._device

    @device.setter
    def device(self, value: str) -> None:
        if str(value).split(":")[0] not in _DEVICES:
            raise ValueError(f"device must be one of {_DEVICES} (optionally 'cuda:i'), got {value!r}")
        self._device = str(value)

    @property
    def n_jobs(self) -> int:
        """Number of parallel workers; ``-1`` means all cores."""
        return self._n_jobs

    @n_jobs.setter
    def n_jobs(self, value: int) -> None:
        value = int(value)
        if value == 0 or value < -1:
            raise ValueError(f"n_jobs must be -1 or a positive integer, got {value}")
        self._n_jobs = value

    @property
    def datasetdir(self) -> Path:
        """Cache directory of downloaded datasets (default: the OS cache dir for sthisto)."""
        if self._datasetdir is None:
            import pooch

            return Path(pooch.os_cache("sthisto"))
        return self._datasetdir

    @datasetdir.setter
    def datasetdir(self, value: str | os.PathLike) -> None:
        self._datasetdir = Path(value).expanduser().resolve()

    @property
    def verbosity(self) -> int:
        """0 errors, 1 warnings (default), 2 info, 3 debug."""
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int) -> None:
        self._verbosity = int(value)
        set_verbosity(self._verbosity)

    def resolve_n_jobs(self, n_jobs: int | None = None) -> int:
        """Return a concrete worker count for ``n_jobs`` (``None`` → setting, ``-1`` → cores)."""
        n = self.n_jobs if n_jobs is None else int(n_jobs)
        return (os.cpu_count() or 1) if n == -1 else max(1, n)

    def resolve_seed(self, seed: int | None = None) -> int:
        """Return ``seed`` or the global seed."""
        return self.seed if seed is None else int(seed)

    def __repr__(self) -> str:
        fields = ("device", "seed", "n_jobs", "datasetdir", "verbosity", "progress_bar")
        return "sthisto.settings(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in fields) + ")"


settings = Settings()


def progress(iterable: Iterable[Any], *, desc: str, total: int | None = None, **kwargs: Any):
    """Wrap ``iterable`` in a tqdm progress bar.

    The bar is shown unless ``settings.progress_bar`` is false (``STHISTO_PROGRESS=0``);
    ``settings.verbosity`` governs log messages only, not the bar.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=not settings.progress_bar, **kwargs)
