"""Preprocessing: nuclei, image features, spot graph and gene graphs into AnnData."""

from . import nuclei
from ._bins import bin_nuclei_features, bins_to_nuclei
from ._cohort import run_cohort
from ._extractor import DeepExtractor, Extractor, TextureExtractor
from ._gene_embeddings import gene_embeddings
from ._go._graph import gene_ontology_graph
from ._graph import hop_rings, knn_graph, lattice_graph, spatial_graph
from ._image_features import image_features
from ._patches import patches
from .nuclei import nuclei_features, segment_nuclei

__all__ = [
    "segment_nuclei",
    "nuclei_features",
    "nuclei",
    "bin_nuclei_features", "bins_to_nuclei",
    "patches", "image_features", "Extractor", "TextureExtractor", "DeepExtractor", "spatial_graph", "lattice_graph",
    "hop_rings", "knn_graph",
    "gene_ontology_graph", "gene_embeddings", "run_cohort"]
