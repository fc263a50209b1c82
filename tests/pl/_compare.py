"""Tight image comparison against committed baselines (regenerate: STHISTO_UPDATE_BASELINES=1)."""

from __future__ import annotations

import os
from pathlib import Path

BASELINES = Path(__file__).parents[1] / "data" / "baseline_images"


def check_image(fig, name: str, tmp_path: Path, tol: float = 2.0) -> None:
    from matplotlib.testing.compare import compare_images

    actual = tmp_path / name
    fig.savefig(actual, dpi=50)
    expected = BASELINES / name
    if os.environ.get("STHISTO_UPDATE_BASELINES") == "1":
        expected.write_bytes(actual.read_bytes())
    assert expected.is_file(), f"missing baseline {expected}; run with STHISTO_UPDATE_BASELINES=1"
    result = compare_images(str(expected), str(actual), tol=tol)
    assert result is None, result
