"""Download registry entries with pooch into ``settings.datasetdir`` (hash-checked, cached).

The registry (``registry.json`` beside this file) gives, per dataset, a base URL, license,
attribution and, per file, its path below the base URL and sha256. ``base_url=`` or the
``STHISTO_DATA_URL`` environment variable replaces the base URL (a mirror, or a local
server in tests). Nothing is downloaded at import.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from importlib.resources import files
from pathlib import Path

from sthisto._errors import InputError, downloading
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


_URL = re.compile(r"(https?|s?ftp)://\S+")


def resolve_base_url(default: str, base_url: str | None = None) -> str:
    """Return the base URL of a download: ``base_url=``, else ``STHISTO_DATA_URL``, else ``default``.

    A ``base_url`` or ``STHISTO_DATA_URL`` that is not an http(s)/ftp URL raises a
    ``ValueError`` naming where it came from; an empty ``STHISTO_DATA_URL`` counts as unset.
    """
    if base_url is not None:
        source, url = "base_url", base_url
    elif os.environ.get("STHISTO_DATA_URL", "").strip():
        source, url = "the environment variable STHISTO_DATA_URL", os.environ["STHISTO_DATA_URL"]
    else:
        return default.rstrip("/")
    if not isinstance(url, str) or not _URL.fullmatch(url.strip()):
        raise InputError(f"{source} = {url!r} is not an http(s) or ftp URL. To fix: give the base URL of a "
                         "mirror with the same layout, e.g. 'https://mirror.example.org/sthisto'.")
    return url.strip().rstrip("/")


def fetch(dataset: str, name: str, *, base_url: str | None = None) -> Path:
    """Download (once) and return the local path of file ``name`` of ``dataset``.

    Network and HTTP failures raise an ``OSError`` naming the URL; a file whose sha256
    differs from the registry raises a ``ValueError``.
    """
    import pooch

    entry = dataset_entry(dataset)
    if name not in entry["files"]:
        known = sorted(entry["files"])
        raise KeyError(f"{dataset!r} has no file {name!r}; known files include {known[:6]} …")
    item = entry["files"][name]
    url = f"{resolve_base_url(entry['base_url'], base_url)}/{item['path']}"
    target = Path(settings.datasetdir) / dataset
    logger.info("fetching %s (%s)", url, entry.get("license", "license unknown"))
    with downloading(url, f"file {name!r} of dataset {dataset!r}", target=target):
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{item['sha256']}",
            fname=name.replace("/", "_"),
            path=target,
            progressbar=settings.progress_bar,
        )
    return Path(path)
