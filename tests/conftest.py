"""Shared fixtures: synthetic sections (session-cached, copied per test) and legacy-ST files."""

from __future__ import annotations

import gzip
import importlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"
REQUIRE_SPATIAL = os.environ.get("STHISTO_REQUIRE_SPATIAL") == "1"


def import_spatial(name: str):
    """Import a package of the ``[spatial]`` extra (squidpy, spatialdata, …).

    Skips the test when it cannot be imported, unless ``STHISTO_REQUIRE_SPATIAL=1`` (as in
    CI): then the ImportError fails the test, so a broken extra cannot hide behind skips.
    """
    if REQUIRE_SPATIAL:
        return importlib.import_module(name)
    return pytest.importorskip(name)


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="torch device for model tests (cpu or cuda)")


@pytest.fixture(scope="session")
def device(request) -> str:
    return request.config.getoption("--device")


@pytest.fixture(scope="session")
def _synthetic_cache():
    import sthisto as st

    return {seed: st.datasets.synthetic(n_spots=100, n_genes=50, seed=seed) for seed in (0, 1, 2)}


@pytest.fixture
def synthetic_sections(_synthetic_cache):
    """Three synthetic sections of one tissue (seeds 0, 1, 2), fresh copies per test."""
    return [_synthetic_cache[s].copy() for s in (0, 1, 2)]


@pytest.fixture
def synthetic_adata(_synthetic_cache):
    """One synthetic section (seed 0), a fresh copy per test."""
    return _synthetic_cache[0].copy()


def write_legacy_st(adata, folder: Path, *, image_format: str = "png") -> tuple[Path, Path, Path]:
    """Write a section in the legacy ST layout (counts tsv.gz, selection tsv, image)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"{c}x{r}" for r, c in zip(adata.obs["array_row"], adata.obs["array_col"], strict=True)]
    counts = pd.DataFrame(adata.X.toarray().astype(int), index=ids, columns=adata.var_names)
    counts_path = folder / "counts.tsv.gz"
    with gzip.open(counts_path, "wt") as fh:
        counts.to_csv(fh, sep="\t")
    xy = np.asarray(adata.obsm["spatial"])
    spots = pd.DataFrame(
        {"x": adata.obs["array_col"].to_numpy(), "y": adata.obs["array_row"].to_numpy(),
         "pixel_x": xy[:, 0], "pixel_y": xy[:, 1], "selected": 1}
    )
    spots_path = folder / "selection.tsv"
    spots.to_csv(spots_path, sep="\t", index=False)
    image_path = folder / f"image.{image_format}"
    Image.fromarray(adata.uns["spatial"]["synthetic"]["images"]["fullres"]).save(image_path)
    return counts_path, spots_path, image_path


@pytest.fixture(scope="session")
def _synthetic_square_cache():
    import sthisto as st

    return st.datasets.synthetic(n_spots=100, n_genes=50, grid="square", spot_diameter_um=100.0,
                                 spot_pitch_um=200.0, microns_per_pixel=2.0, seed=0)


@pytest.fixture
def synthetic_square(_synthetic_square_cache):
    """A synthetic section on a legacy-ST square grid (200 µm pitch, 2 µm/px), a fresh copy per test."""
    return _synthetic_square_cache.copy()


@pytest.fixture
def legacy_st_files(synthetic_square, tmp_path):
    """Paths (counts, spots, image) of the square-grid synthetic section written in legacy ST format."""
    return write_legacy_st(synthetic_square, tmp_path / "section")
