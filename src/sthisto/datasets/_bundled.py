"""Files shipped inside the package (``datasets/_data``), reached through one function."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

GENE_ONTOLOGY_SNAPSHOT = "go_human_2019-01-29"


def bundled_gene_ontology() -> Traversable:
    """Return the bundled GO 2019-01-29 + GOA human snapshot as compact arrays (``.npz``).

    GO and GOA are © the Gene Ontology Consortium, CC BY 4.0; ``<name>.json`` next to it
    records the source files and their sha256. :func:`sthisto.pp.gene_ontology_graph` uses
    it when no ``ontology=``/``annotations=`` are given.

    Returns
    -------
    A readable resource (``.open("rb")``); a path on a normal installation.
    """
    return files("sthisto.datasets").joinpath("_data", "go", f"{GENE_ONTOLOGY_SNAPSHOT}.npz")
