"""Preprocessing: nuclei, image features, spot graph and gene graphs into AnnData."""

from ._graph import hop_rings, knn_graph, spatial_graph
from ._image_features import image_features
from ._patches import patches

__all__ = ["patches", "image_features", "spatial_graph", "hop_rings", "knn_graph"]
