"""Geometry shared by the SpatialData reader and writer: transformations and spot shapes.

spatialdata is imported inside functions only (``import sthisto`` must stay light).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

BIN_NAME = re.compile(r"square_(\d{3})um")  # spatialdata-io's Visium HD bin names, e.g. "..._square_008um"
_SPATIAL_EXTRA = 'pip install "sthisto[spatial]"'


def require_spatialdata():
    """Import spatialdata, raising an ImportError that says how to install it.

    Returns
    -------
    The :class:`spatialdata.SpatialData` class.
    """
    try:
        from spatialdata import SpatialData
    except ImportError as err:
        raise ImportError(f"SpatialData support needs spatialdata: {_SPATIAL_EXTRA} ({err})") from err
    return SpatialData


def element_transform(element, coordinate_system: str, what: str) -> np.ndarray:
    """Return the 3×3 affine matrix (x, y) of ``element``'s transformation to ``coordinate_system``.

    Raises a ValueError when the transformation is not affine in x, y (a projective part,
    or a transformation that cannot be written as a matrix).

    Returns
    -------
    float64 (3, 3) matrix acting on homogeneous (x, y, 1) column vectors.
    """
    from spatialdata.transformations import get_transformation

    transform = get_transformation(element, to_coordinate_system=coordinate_system)
    try:
        matrix = np.asarray(transform.to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y")), dtype=np.float64)
    except (ValueError, KeyError, TypeError, NotImplementedError) as err:
        raise ValueError(
            f"the transformation of {what} to {coordinate_system!r} ({type(transform).__name__}) is not an "
            f"affine map of x, y: {err}"
        ) from err
    if matrix.shape != (3, 3) or not np.allclose(matrix[2], [0, 0, 1]) or not np.isfinite(matrix).all():
        raise ValueError(
            f"the transformation of {what} to {coordinate_system!r} is not affine (matrix {matrix.tolist()}); "
            "sthisto needs an affine map (scale, rotation, translation) between shapes and image."
        )
    if abs(np.linalg.det(matrix[:2, :2])) < 1e-12:
        raise ValueError(f"the transformation of {what} to {coordinate_system!r} is singular ({matrix.tolist()}).")
    return matrix


def linear_scale(matrix: np.ndarray, what: str, *, rtol: float = 1e-3) -> float:
    """Return the isotropic scale of an affine map (its singular values must agree within ``rtol``).

    A shear or an anisotropic scale would turn round spots into ellipses and leave the pixel
    size undefined, so it raises a ValueError.

    Returns
    -------
    The scale factor (output units per input unit).
    """
    s = np.linalg.svd(np.asarray(matrix)[:2, :2], compute_uv=False)
    if s[0] - s[1] > rtol * s[0]:
        raise ValueError(
            f"the transformation {what} scales x and y differently or shears (singular values "
            f"{s[0]:.6g}, {s[1]:.6g}); sthisto needs a similarity (uniform scale, rotation, translation)."
        )
    return float(np.sqrt(s[0] * s[1]))


def shape_geometry(shapes, shapes_key: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Centres, diameters and kind (``"circle"`` or ``"square"``) of spot shapes.

    Circles are points with a ``radius`` column; polygons are treated as squares when they
    are quadrilaterals whose area equals their side squared (Visium HD bins), with the side
    as "diameter"; other polygons get the diameter of the disk of equal area.

    Returns
    -------
    ``(centres (n, 2), diameters (n,), kind)`` in the shapes' own coordinates.
    """
    geom = shapes.geometry
    kinds = set(geom.geom_type)
    if kinds == {"Point"}:
        if "radius" not in shapes.columns:
            raise ValueError(f"shapes {shapes_key!r} are points without a 'radius' column (not circles).")
        centres = np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()]).astype(np.float64)
        diameters = 2.0 * pd.to_numeric(shapes["radius"], errors="coerce").to_numpy(np.float64)
        bad = ~(np.isfinite(diameters) & (diameters > 0))
        if bad.any():
            raise ValueError(f"shapes {shapes_key!r}: {int(bad.sum())} circle(s) have a radius that is not a "
                             f"positive number (e.g. {shapes['radius'].iloc[int(np.argmax(bad))]} at "
                             f"{str(shapes.index[int(np.argmax(bad))])!r}).")
        return _finite_centres(centres, shapes, shapes_key), diameters, "circle"
    if kinds <= {"Polygon", "MultiPolygon"}:
        c = geom.centroid
        centres = _finite_centres(np.column_stack([c.x.to_numpy(), c.y.to_numpy()]).astype(np.float64), shapes,
                                  shapes_key)
        area = geom.area.to_numpy(np.float64)
        side = geom.length.to_numpy(np.float64) / 4.0
        import shapely

        values = geom.to_numpy()
        polygon = shapely.get_type_id(values) == shapely.GeometryType.POLYGON
        n_vertices = np.where(polygon, shapely.get_num_coordinates(values), 0)  # closed ring: 5 for a square
        if (n_vertices == 5).all() and np.allclose(area, side**2, rtol=1e-3):
            return centres, side, "square"
        return centres, 2.0 * np.sqrt(area / np.pi), "polygon"
    raise ValueError(f"shapes {shapes_key!r} hold {sorted(kinds)} geometries; spots must be circles or polygons.")


def _finite_centres(centres: np.ndarray, shapes, shapes_key: str) -> np.ndarray:
    bad = ~np.isfinite(centres).all(axis=1)
    if bad.any():
        raise ValueError(f"shapes {shapes_key!r}: {int(bad.sum())} shape(s) have NaN or infinite coordinates "
                         f"(e.g. {str(shapes.index[int(np.argmax(bad))])!r}), or are empty.")
    return centres
