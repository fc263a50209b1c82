"""Readers that turn spatial transcriptomics folders, files and SpatialData objects into AnnData."""

from ._legacy_st import legacy_st
from ._spatialdata import spatialdata
from ._visium import visium
from ._visium_hd import visium_hd

__all__ = ["legacy_st", "visium", "visium_hd", "spatialdata"]
