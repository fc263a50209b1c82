"""Dataset fixtures: a local mirror of a one-section 'her2st' registry."""

import hashlib

import pytest

import sthisto as st
from sthisto.datasets import _fetch
from tests.conftest import write_legacy_st


@pytest.fixture
def mirror(synthetic_square, tmp_path, monkeypatch):
    """A local mirror of a one-section 'her2st' registry made from a square-grid synthetic section."""
    src = tmp_path / "mirror"
    counts, spots, image = write_legacy_st(synthetic_square, src / "raw", image_format="jpg")
    layout = {"S1/counts.tsv.gz": counts, "S1/selection.tsv": spots, "S1/image.jpg": image}
    files = {}
    for key, path in layout.items():
        rel = f"data/{key.replace('/', '_')}"
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(path.read_bytes())
        files[key] = {"path": rel, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    registry = {"her2st": {"base_url": "https://invalid.example", "license": "test", "attribution": "test",
                           "files": files}}
    monkeypatch.setattr(_fetch, "registry", lambda: registry)
    monkeypatch.setattr(st.settings, "_datasetdir", tmp_path / "cache")
    return src
