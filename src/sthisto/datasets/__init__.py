"""Datasets: the bundled HER2ST demo, pooch-fetched real data and a synthetic section."""

from ._bundled import bundled_gene_ontology
from ._demo import her2st_demo, her2st_demo_spatialdata, her2st_gene2vec, her2st_panel
from ._fetch import fetch, registry
from ._go import gene_ontology
from ._her2st import her2st, her2st_sections
from ._synthetic import synthetic

__all__ = ["her2st_demo", "her2st_demo_spatialdata", "her2st_panel", "her2st_gene2vec", "her2st", "her2st_sections",
           "synthetic", "fetch", "registry", "gene_ontology", "bundled_gene_ontology"]
