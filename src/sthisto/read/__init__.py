"""Readers that turn spatial transcriptomics folders, files and SpatialData objects into AnnData."""

from ._legacy_st import legacy_st
from ._spatialdata import spatialdata
from ._visium import visium

__all__ = ["legacy_st", "visium", "spatialdata"]
