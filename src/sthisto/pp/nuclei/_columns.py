"""Column names of every nuclei table, defined once.

- :data:`MEASURE_COLUMNS`: the per-nucleus table of :func:`~sthisto.pp.nuclei.measure`
  (pixel units, skimage's property names where it has one).
- :data:`MICRON_UNITS`: how each pixel shape measure becomes a physical one
  (:func:`~sthisto.pp.nuclei.to_microns`): new name and power of the pixel size
  (``None``: unit-free, taken as is).
- :data:`MORPHOLOGY_COLUMNS` / :data:`TOPOLOGY_COLUMNS`: per-nucleus features in µm.
- :data:`SPOT_MORPHOLOGY_COLUMNS` / :data:`SPOT_TOPOLOGY_COLUMNS`: the per-spot DataFrames
  that :func:`sthisto.pp.nuclei_features` writes to ``obsm``.
"""

from __future__ import annotations

MEASURE_COLUMNS = (
    "label", "centroid_y", "centroid_x", "bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1",
    "area", "perimeter", "major_axis", "minor_axis", "eccentricity", "orientation",
    "extent", "circularity", "aspect_ratio", "convex_area", "solidity", "convex_perimeter",
    "skeleton_length",
)

# pixel column -> (micron column, power of microns_per_pixel; None = unit-free)
MICRON_UNITS = {
    "area": ("area_um2", 2),
    "perimeter": ("perimeter_um", 1),
    "major_axis": ("major_axis_um", 1),
    "minor_axis": ("minor_axis_um", 1),
    "eccentricity": ("eccentricity", None),
    "orientation": ("orientation_abs_cos2", None),  # |cos 2θ|
    "extent": ("extent", None),
    "circularity": ("circularity", None),
    "aspect_ratio": ("aspect_ratio", None),
    "convex_area": ("convex_area_um2", 2),
    "solidity": ("solidity", None),
    "convex_perimeter": ("convex_perimeter_um", 1),
    "skeleton_length": ("skeleton_length_um", 1),
}
MORPHOLOGY_COLUMNS = tuple(name for name, _ in MICRON_UNITS.values())
TOPOLOGY_COLUMNS = (
    "delaunay_mean_dist_um", "delaunay_max_dist_um", "delaunay_min_dist_um", "delaunay_degree",
)

# spot pooling: added by pool_spots / nuclei_features
NUCLEUS_COUNT = "nucleus_count"
NUCLEUS_DENSITY = "nucleus_density_per_mm2"
NO_NUCLEI = "no_nuclei"
ORIENTATION_COHERENCE = "orientation_coherence"
SPOT_MORPHOLOGY_COLUMNS = (*MORPHOLOGY_COLUMNS, ORIENTATION_COHERENCE, NUCLEUS_COUNT, NUCLEUS_DENSITY, NO_NUCLEI)
SPOT_TOPOLOGY_COLUMNS = (*TOPOLOGY_COLUMNS, NO_NUCLEI)
