"""Exchange with other formats: sthisto results into SpatialData (``sdata.write`` round-trips)."""

from ._spatialdata import to_spatialdata

__all__ = ["to_spatialdata"]
