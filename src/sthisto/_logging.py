"""The ``sthisto`` logger and a verbosity-aware progress bar."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger("sthisto")

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


def progress(iterable: Iterable[Any], *, desc: str, total: int | None = None, **kwargs: Any):
    """Wrap ``iterable`` in a tqdm bar unless verbosity is below 2 or bars are disabled."""
    from tqdm.auto import tqdm

    from ._settings import settings

    return tqdm(iterable, desc=desc, total=total, disable=not settings.progress_bar, **kwargs)
