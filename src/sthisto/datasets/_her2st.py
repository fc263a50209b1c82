"""HER2-positive breast cancer legacy ST sections (Andersson et al. 2021)."""

from __future__ import annotations

import os
from pathlib import Path

from anndata import AnnData

from sthisto._validate import flag

from ._fetch import dataset_entry, fetch


def her2st_sections(*, with_image: bool = False) -> list[str]:
    """Names of the HER2ST sections in the registry (only those with an image if asked)."""
    files = dataset_entry("her2st")["files"]
    kind = "image.jpg" if flag(with_image, "with_image") else "counts.tsv.gz"
    return sorted({k.split("/")[0] for k in files if k.endswith(kind)})


def her2st(
    section: str,
    *,
    path: str | os.PathLike | None = None,
    base_url: str | None = None,
    load_fullres: bool = False,
) -> AnnData:
    """Load one HER2ST section (counts, spot coordinates, full-resolution H&E).

    Parameters
    ----------
    section
        Section name, e.g. ``"C2"`` (see :func:`her2st_sections`).
    path
        A local folder holding ``ST-cnts/{section}.tsv.gz``, ``ST-spotfiles/{section}_selection.tsv``
        and the image as ``ST-imgs/{section}.jpg``; if ``None`` the files are downloaded with
        pooch (sha256-checked) into ``sthisto.settings.datasetdir``.
    base_url
        Mirror replacing the registry's base URL (also ``STHISTO_DATA_URL``).
    load_fullres
        Passed to :func:`sthisto.read.legacy_st`.

    Returns
    -------
    The section as AnnData, read by :func:`sthisto.read.legacy_st`.
    """
    from sthisto.read import legacy_st

    if path is not None:
        root = Path(path)
        files = (root / "ST-cnts" / f"{section}.tsv.gz", root / "ST-spotfiles" / f"{section}_selection.tsv",
                 root / "ST-imgs" / f"{section}.jpg")
    else:
        if section not in her2st_sections():
            raise KeyError(f"unknown HER2ST section {section!r}; known: {her2st_sections()}")
        if section not in her2st_sections(with_image=True):
            raise ValueError(
                f"the registry has no verified image for section {section!r} (images: "
                f"{her2st_sections(with_image=True)}); pass path= to a local copy with the image."
            )
        files = tuple(fetch("her2st", f"{section}/{n}", base_url=base_url)
                      for n in ("counts.tsv.gz", "selection.tsv", "image.jpg"))
    return legacy_st(*files, library_id=section, load_fullres=load_fullres)
