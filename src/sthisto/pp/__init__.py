"""Preprocessing: nuclei, image features, spot graph and gene graphs into AnnData."""

from ._graph import hop_rings, knn_graph, spatial_graph

__all__ = ["spatial_graph", "hop_rings", "knn_graph"]
