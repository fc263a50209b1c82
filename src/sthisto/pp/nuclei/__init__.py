"""Nuclei: segmentation, per-nucleus measurements and spot pooling.

The AnnData steps are :func:`sthisto.pp.segment_nuclei` and
:func:`sthisto.pp.nuclei_features`; this package also exposes the same work on plain
arrays, for users without AnnData::

    from sthisto.pp import nuclei

    table = nuclei.segment_image(rgb, microns_per_pixel=0.5)        # or nuclei.measure(labels)
    feats = nuclei.to_microns(table, microns_per_pixel=0.5)          # µm units
    topo = nuclei.delaunay_distances(table[["x", "y"]].to_numpy())  # (n, 4) mean/max/min/degree
    spots = nuclei.pool_spots(feats, table[["x", "y"]].to_numpy(), spots_xy, radius_px)

Where things live: ``_stain`` (hematoxylin, threshold), ``_params`` (:class:`WatershedParams`,
the only definition of the watershed defaults), ``_watershed`` (:func:`segment_tile`),
``_segmenters`` (the :class:`Segmenter` protocol and its implementations), ``_tiling``
(windows, :func:`segment_image`; the tile runner :func:`map_tiles` comes from
:mod:`sthisto.pp._parallel`), ``_kernels``,
``_perimeter``, ``_hull`` and ``_skeleton`` (Numba), ``_measure``, ``_topology``,
``_pooling``, ``_columns`` (every column name), and the AnnData wrappers
``_segment_nuclei`` and ``_nuclei_features``.
"""

from ._columns import MEASURE_COLUMNS, MORPHOLOGY_COLUMNS, NUCLEUS_COUNT, TOPOLOGY_COLUMNS
from ._measure import as_label_image, measure, measure_arrays, to_microns
from ._nuclei_features import nuclei_features
from ._params import WatershedParams
from ._pooling import assign_spots, fill_missing, pool_spots
from ._segment_nuclei import segment_nuclei
from ._segmenters import LabelImage, Segmenter, TileFunction, Watershed, as_segmenter
from ._stain import hematoxylin, hematoxylin_threshold
from ._tiling import crop_window, map_tiles, segment_image, tile_windows
from ._topology import delaunay_distances, delaunay_features
from ._watershed import segment_tile

__all__ = [
    "WatershedParams",
    "Segmenter",
    "Watershed",
    "LabelImage",
    "TileFunction",
    "as_segmenter",
    "segment_image",
    "segment_tile",
    "map_tiles",
    "tile_windows",
    "crop_window",
    "hematoxylin",
    "hematoxylin_threshold",
    "measure",
    "measure_arrays",
    "as_label_image",
    "to_microns",
    "delaunay_distances",
    "delaunay_features",
    "assign_spots",
    "pool_spots",
    "fill_missing",
    "MEASURE_COLUMNS",
    "MORPHOLOGY_COLUMNS",
    "NUCLEUS_COUNT",
    "TOPOLOGY_COLUMNS",
    "segment_nuclei",
    "nuclei_features",
]
