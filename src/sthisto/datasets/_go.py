"""Gene Ontology releases by pooch: ``go-basic.obo`` and ``goa_human.gaf.gz``.

Files are fetched from the GO release archive (``http://release.geneontology.org/<release>/``),
or from ``base_url=`` / the ``STHISTO_DATA_URL`` environment variable (a mirror with the
same layout), into ``sthisto.settings.datasetdir / "gene_ontology" / <release>``. GO data
are © the Gene Ontology Consortium, licensed CC BY 4.0. Nothing is downloaded at import.
"""

from __future__ import annotations

import re
from pathlib import Path

from sthisto._errors import downloading
from sthisto._logging import logger
from sthisto._settings import settings

from ._fetch import resolve_base_url

GO_BASE_URL = "http://release.geneontology.org"
GO_FILES = {"ontology": "ontology/go-basic.obo", "annotations": "annotations/goa_human.gaf.gz"}
# sha256 pins per release and file; a release not listed here is downloaded unpinned and the
# hash pooch computes is logged (add it here to pin it).
GO_REGISTRY: dict[str, dict[str, str | None]] = {}
GO_LICENSE = "CC BY 4.0"
GO_ATTRIBUTION = (
    "Gene Ontology Consortium (http://geneontology.org) and GOA (EMBL-EBI), CC BY 4.0. "
    "Ashburner et al., Nat Genet 2000; The Gene Ontology Consortium, Nucleic Acids Res 2019."
)


def gene_ontology(release: str = "2019-01-29", *, base_url: str | None = None) -> dict[str, Path]:
    """Download (once) a GO release: the ontology and the human annotations.

    Parameters
    ----------
    release
        GO release date ``"YYYY-MM-DD"`` as in the GO release archive.
    base_url
        Replace the archive URL (a mirror laid out as ``<base_url>/<release>/ontology/go-basic.obo``
        and ``<base_url>/<release>/annotations/goa_human.gaf.gz``); ``None`` uses the
        ``STHISTO_DATA_URL`` environment variable or the GO archive.

    Returns
    -------
    ``{"ontology": path, "annotations": path}``, to pass to
    :func:`sthisto.pp.gene_ontology_graph` as ``ontology=`` and ``annotations=``.
    """
    import pooch

    if not isinstance(release, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", release):
        raise ValueError(f"release must be a GO release date 'YYYY-MM-DD', got {release!r}")
    base = resolve_base_url(GO_BASE_URL, base_url)
    target = Path(settings.datasetdir) / "gene_ontology" / release
    pins = GO_REGISTRY.get(release, {})
    out = {}
    for kind, rel in GO_FILES.items():
        url = f"{base}/{release}/{rel}"
        known = pins.get(kind)
        logger.info("fetching %s (%s)", url, GO_LICENSE)
        with downloading(url, f"GO {release} {kind} file", target=target):
            path = pooch.retrieve(
                url, known_hash=None if known is None else f"sha256:{known}", fname=Path(rel).name,
                path=target, progressbar=settings.progress_bar,
            )
        if known is None:
            logger.warning("%s is not hash-pinned in sthisto (integrity not verified); its sha256 is %s",
                           url, pooch.file_hash(path))
        out[kind] = Path(path)
    return out
