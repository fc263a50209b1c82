"""Reader fixtures: a fresh copy of the real 100-spot Visium folder."""

import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parents[1] / "data" / "visium_100spots"


@pytest.fixture
def visium_dir(tmp_path):
    target = tmp_path / "visium"
    shutil.copytree(FIXTURE, target)
    return target
