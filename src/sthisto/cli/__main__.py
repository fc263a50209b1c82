"""``python -m sthisto.cli``."""

import sys

from . import main

sys.exit(main())
