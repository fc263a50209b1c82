"""Global settings: device, seed, n_jobs, dataset directory, verbosity and progress bars.

The verbosity sets the ``sthisto`` logger's level (:func:`set_verbosity`);
``progress_bar`` switches the bars of :func:`progress`.

Each setting may be given by an environment variable (:data:`ENV_VARS`). A value that is
not valid never makes ``import sthisto`` fail: it is ignored with a warning that names the
variable, the value and what is accepted, and the default is used. Setting an attribute
of ``sthisto.settings`` to an invalid value raises a ``ValueError`` naming the setting.
``STHISTO_DATA_URL`` (a download mirror) is read when a download starts.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._errors import InputError
from ._logging import logger
from ._validate import integer, one_of

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_VERBOSITY_NAMES = {"error": 0, "warning": 1, "info": 2, "debug": 3}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

#: environment variable -> (attribute, default, what the variable accepts)
ENV_VARS: dict[str, tuple[str, object, str]] = {
    "STHISTO_DEVICE": ("device", "auto", "'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps'"),
    "STHISTO_SEED": ("seed", 0, "an integer between 0 and 2**32 - 1"),
    "STHISTO_N_JOBS": ("n_jobs", 1, "-1 (all cores) or a positive integer"),
    "STHISTO_DATA_DIR": ("datasetdir", None, "a folder path"),
    "STHISTO_VERBOSITY": ("verbosity", 1, "0-3 or error/warning/info/debug"),
    "STHISTO_PROGRESS": ("progress_bar", True, f"one of {_TRUE + _FALSE}"),
}
#: read at download time by sthisto.datasets, listed here so a misspelling is recognised
OTHER_ENV_VARS = ("STHISTO_DATA_URL",)
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


def _int_like(value):
    """``"7"`` → 7 (environment variables and config files give strings); other values as given."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return value


def _warn_misspelled(environ) -> None:
    known = [*ENV_VARS, *OTHER_ENV_VARS]
    for name in environ:
        if name.startswith("STHISTO_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                warnings.warn(f"environment variable {name} is not a sthisto setting (ignored); did you "
                              f"mean {close[0]}?", RuntimeWarning, stacklevel=3)


def _worker_count(value) -> int:
    """Check an ``n_jobs`` value: -1 (all cores) or a positive integer (0 workers cannot run anything)."""
    value = integer(value, "n_jobs", minimum=-1, fix="use -1 (all cores) or a positive integer")
    if value == 0:
        raise InputError("n_jobs must be -1 (all cores) or a positive integer, got 0.")
    return value


class Settings:
    """Process-wide defaults that functions use when their own argument is ``None``."""

    def __init__(self) -> None:
        self._initialised = False  # no log handler is added while reading the environment
        self._datasetdir: Path | None = None
        for var, (attr, default, accepted) in ENV_VARS.items():
            if default is not None:
                setattr(self, attr, default)
            text = os.environ.get(var)
            if text is None:
                continue
            try:
                setattr(self, attr, text)
            except (ValueError, TypeError):
                warnings.warn(f"ignoring the environment variable {var}={text!r}: it accepts {accepted}; "
                              f"using the default ({attr}={getattr(self, attr)!r}).", RuntimeWarning, stacklevel=2)
        _warn_misspelled(os.environ)
        self._initialised = True

    @property
    def device(self) -> str:
        """Torch device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda[:i]"`` or ``"mps"``."""
        return self._device

    @device.setter
    def device(self, value: str) -> None:
        text = str(value).strip()
        if not _DEVICE.fullmatch(text):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps', got {value!r}.")
        self._device = text

    @property
    def seed(self) -> int:
        """Global random seed (0 by default)."""
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = integer(_int_like(value), "seed", minimum=0, maximum=2**32 - 1)

    @property
    def n_jobs(self) -> int:
        """Number of parallel workers; ``-1`` means all cores."""
        return self._n_jobs

    @n_jobs.setter
    def n_jobs(self, value: int) -> None:
        self._n_jobs = _worker_count(_int_like(value))

    @property
    def datasetdir(self) -> Path:
        """Cache directory of downloaded datasets (default: the OS cache dir for sthisto)."""
        if self._datasetdir is None:
            import pooch

            return Path(pooch.os_cache("sthisto"))
        return self._datasetdir

    @datasetdir.setter
    def datasetdir(self, value: str | os.PathLike) -> None:
        if not isinstance(value, str | os.PathLike) or not str(value).strip():
            raise ValueError(f"datasetdir must be a folder path, got {value!r}.")
        path = Path(value).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise ValueError(f"datasetdir {path} is a file, not a folder.")
        self._datasetdir = path

    @property
    def verbosity(self) -> int:
        """0 errors, 1 warnings (default), 2 info, 3 debug (or the names ``"error"`` … ``"debug"``)."""
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int | str) -> None:
        if isinstance(value, str) and value.strip().lower() in _VERBOSITY_NAMES:
            value = _VERBOSITY_NAMES[value.strip().lower()]
        self._verbosity = integer(_int_like(value), "verbosity", minimum=0, maximum=3,
                                  fix="use 0 (errors), 1 (warnings), 2 (info) or 3 (debug)")
        set_verbosity(self._verbosity, add_handler=self._initialised)

    @property
    def progress_bar(self) -> bool:
        """Show tqdm progress bars for long loops (default ``True``)."""
        return self._progress_bar

    @progress_bar.setter
    def progress_bar(self, value: bool | str) -> None:
        if isinstance(value, str):
            value = one_of(value.strip().lower(), "progress_bar", _TRUE + _FALSE) in _TRUE
        elif not isinstance(value, bool):
            raise ValueError(f"progress_bar must be True or False, got {value!r}.")
        self._progress_bar = value

    def resolve_n_jobs(self, n_jobs: int | None = None) -> int:
        """Return a concrete worker count for ``n_jobs`` (``None`` → setting, ``-1`` → cores)."""
        n = self.n_jobs if n_jobs is None else _worker_count(n_jobs)
        return (os.cpu_count() or 1) if n == -1 else max(1, n)

    def resolve_seed(self, seed: int | None = None) -> int:
        """Return ``seed`` or the global seed."""
        return self.seed if seed is None else integer(seed, "seed", minimum=0, maximum=2**32 - 1)

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
