"""The ``sthisto`` logger (no handler at import; its level follows ``sthisto.settings.verbosity``)."""

from __future__ import annotations

import logging

logger = logging.getLogger("sthisto")
