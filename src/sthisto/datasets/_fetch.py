"""Download registry entries with pooch into ``settings.datasetdir`` (hash-checked, cached).

The registry (``registry.json`` beside this file) gives, per dataset, a base URL, license,
attribution and, per file, its path below the base URL and sha256. ``base_url=`` or the
``STHISTO_DATA_URL`` environment variable replaces the base URL (a mirror, or a local
server in tests). Nothing is downloaded at import.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib.resources import files
from pathlib import Path

from sthisto._logging import logger
from sthisto._settings import settings


@cache
def registry() -> dict:
    """Return the parsed dataset registry."""
    return json.loads(files("sthisto.datasets").joinpath("registry.json").read_text())


def dataset_entry(dataset: str) -> dict:
    """Return one dataset's registry entry, with a clear error for unknown names."""
    reg = registry()
    if dataset not in reg:
        raise KeyError(f"unknown dataset {dataset!r}; known: {sorted(reg)}")
    return reg[dataset]


def fetch(dataset: str, name: str, *, base_url: str | None = None) -> Path:
    """Download (once) and return the local path of file ``name`` of ``dataset``."""
    import pooch

    entry = dataset_entry(dataset)
    if name not in entry["files"]:
        known = sorted(entry["files"])
        raise KeyError(f"{dataset!r} has no file {name!r}; known files include {known[:6]} …")
    item = entry["files"][name]
    base = base_url or os.environ.get("STHISTO_DATA_URL") or entry["base_url"]
    url = f"{base.rstrip('/')}/{item['path']}"
    target = Path(settings.datasetdir) / dataset
    logger.info("fetching %s (%s)", url, entry.get("license", "license unknown"))
    path = pooch.retrieve(
        url,
        known_hash=f"sha256:{item['sha256']}",
        fname=name.replace("/", "_"),
        path=target,
        progressbar=settings.progress_bar,
    )
    return Path(path)
