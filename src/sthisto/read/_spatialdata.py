"""Reader for :class:`spatialdata.SpatialData`: one (image, shapes, table) triple → AnnData.

The H&E stays lazy: the levels of the multiscale image become dask arrays in
``uns['spatial'][lib]['images']`` (``fullres``, ``fullres_1``…, see :mod:`sthisto._image`),
so every step reads the tiles it needs from the pyramid level it needs. Spot centres and
sizes are mapped through spatialdata's coordinate transformations into the image's pixel
frame (shape coordinates are used as spatialdata-io writes them: a point at ``(x, y)`` of
the image's intrinsic frame is centred on pixel column ``x``, row ``y``).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._errors import DEPENDENCY_ERRORS, reading
from sthisto._image import downsample, read_region
from sthisto._logging import logger
from sthisto._spatialdata import (
    BIN_NAME,
    element_transform,
    linear_scale,
    require_spatialdata,
    shape_geometry,
)
from sthisto._utils import detach
from sthisto._validate import existing_folder

from ._common import check_inside, counts_csr

HIRES_MAX_DIM = 2000


def _pick(names, given: str | None, what: str, arg: str):
    names = list(names)
    if not names:
        raise KeyError(f"the SpatialData object has no {what}; sthisto needs a table of raw counts, the spot/bin "
                       "shapes it annotates and the H&E image (is this the store sdata.write wrote?).")
    if given is not None:
        if given not in names:
            raise KeyError(f"{what} {given!r} is not in the SpatialData object ({arg}=); it has {names}.")
        return given
    if len(names) == 1:
        return names[0]
    raise ValueError(f"the SpatialData object has {len(names)} {what}s {names}; pass {arg}= to choose one.")


def _table_keys(table: AnnData, table_key: str) -> tuple[list[str], str, str]:
    attrs = table.uns.get("spatialdata_attrs")
    if not isinstance(attrs, dict) or not {"region", "region_key", "instance_key"} <= set(attrs):
        raise ValueError(
            f"table {table_key!r} has no uns['spatialdata_attrs'] (region, region_key, instance_key): "
            "parse it with spatialdata.models.TableModel.parse(..., region=<shapes>, region_key=..., "
            "instance_key=...)."
        )
    region = attrs["region"]
    region = [region] if isinstance(region, str) else list(region)
    return region, attrs["region_key"], attrs["instance_key"]


def _image_levels(sdata, image_key: str) -> list:
    """Pyramid levels of an image element as (H, W, 3) uint8 dask arrays, finest first."""
    from xarray import DataArray

    element = sdata.images[image_key]
    if isinstance(element, DataArray):
        arrays = [element]
    else:
        from spatialdata import get_pyramid_levels

        arrays = list(get_pyramid_levels(element))
    first = arrays[0]
    if set(first.dims) != {"c", "y", "x"}:
        raise ValueError(f"image {image_key!r} has dims {first.dims}; a 2D (c, y, x) H&E image is required.")
    if first.sizes["c"] not in (3, 4) or np.dtype(first.dtype) != np.uint8:
        raise ValueError(
            f"image {image_key!r} has {first.sizes['c']} channel(s) of dtype {first.dtype}; sthisto needs an "
            "RGB uint8 H&E image (3 channels, 0-255). Convert it (e.g. rescale to uint8) or pass "
            "image_key= of the H&E image."
        )
    if first.sizes["c"] == 4:  # RGBA (e.g. Space Ranger PNGs), as the file readers do
        logger.warning("image %r is RGBA; using its RGB channels (alpha dropped)", image_key)
    return [a.transpose("y", "x", "c").data[..., :3] for a in arrays]


def _hires(levels: list, source: str) -> tuple[np.ndarray, float]:
    """Read a small in-memory image (longer side ≤ 2000 px) read from the smallest adequate level."""
    h0, w0 = levels[0].shape[:2]
    level = next((lv for lv in reversed(levels) if max(lv.shape[:2]) >= HIRES_MAX_DIM), levels[0])
    step = max(1, int(max(level.shape[:2]) // (2 * HIRES_MAX_DIM)))
    small = read_region(level, np.s_[::step, ::step], source=source)
    img, _ = downsample(small, max_dim=HIRES_MAX_DIM)
    return img, img.shape[1] / w0


def _stored_microns_per_pixel(table: AnnData) -> float | None:
    """``microns_per_pixel`` of a scanpy-style ``uns['spatial'][lib]['scalefactors']`` in the table."""
    spatial = table.uns.get(K.SPATIAL_UNS)
    if isinstance(spatial, dict) and len(spatial) == 1:
        value = next(iter(spatial.values())).get("scalefactors", {}).get(K.MICRONS_PER_PIXEL)
        return None if value is None else float(value)
    return None


def _microns_per_pixel(microns_per_pixel, microns_per_unit, spot_diameter_um, *, image_scale, diameter_px,
                       shapes_key, table) -> tuple[float, str]:
    if microns_per_pixel is not None:
        return float(microns_per_pixel), "microns_per_pixel="
    if microns_per_unit is not None:
        return float(microns_per_unit) * image_scale, "microns_per_unit= × image transformation"
    if spot_diameter_um is None and (stored := _stored_microns_per_pixel(table)) is not None:
        return stored, "table uns['spatial'] scalefactors"
    if spot_diameter_um is None and (match := BIN_NAME.search(shapes_key)):
        spot_diameter_um = float(match.group(1))
        logger.info("shapes %r are %g µm bins (from the name)", shapes_key, spot_diameter_um)
    if spot_diameter_um is not None:
        return float(spot_diameter_um) / diameter_px, "spot size"
    raise ValueError(
        "cannot tell the pixel size of the image: pass microns_per_pixel= (µm per image pixel), "
        "microns_per_unit= (µm per coordinate-system unit, e.g. 1.0 for a micron coordinate system) "
        "or spot_diameter_um= (65 for Visium circles sized by Space Ranger's spot_diameter_fullres, which "
        "spans 65 µm; 100 for legacy ST; the bin size for Visium HD)."
    )


def spatialdata(
    sdata,
    *,
    table_key: str | None = None,
    image_key: str | None = None,
    shapes_key: str | None = None,
    coordinate_system: str | None = None,
    library_id: str | None = None,
    layer: str | None = None,
    microns_per_pixel: float | None = None,
    microns_per_unit: float | None = None,
    spot_diameter_um: float | None = None,
) -> AnnData:
    """Read one section of a :class:`spatialdata.SpatialData` object into sthisto's AnnData.

    The table (spots × genes, raw counts), the shapes it annotates (circles, or squares for
    Visium HD bins) and an H&E image make one section. The image is not loaded: its
    multiscale levels are referenced as dask arrays (see :mod:`sthisto._image`), and each
    step reads tiles from the pyramid level it needs. Spot centres and sizes are taken from
    the shapes through the coordinate transformations of both elements into the image's
    pixel frame. Argument names follow sopa (``table_key``, ``image_key``, ``shapes_key``).

    Parameters
    ----------
    sdata
        A :class:`spatialdata.SpatialData` (e.g. from :func:`spatialdata.read_zarr` or a
        spatialdata-io reader), or the path of its zarr store (read with
        :func:`spatialdata.read_zarr`; a missing, damaged or foreign store is an error naming it).
    table_key
        Table with the counts; optional when there is one table.
    image_key
        The H&E image (RGB uint8, (c, y, x), single- or multiscale); optional when there is
        one image, else the one with most pixels among those sharing a coordinate system
        with the shapes.
    shapes_key
        Shapes annotated by the table; optional when the table annotates one element.
    coordinate_system
        Coordinate system linking image and shapes; default: the one they share (the one
        where the image is untransformed when they share several).
    library_id
        Key in ``uns['spatial']``; defaults to ``image_key``.
    layer
        Table layer with raw counts (``None``: ``X``).
    microns_per_pixel
        Pixel size of the image's full-resolution level. When ``None`` it comes from
        ``microns_per_unit`` and the image transformation; else from
        ``table.uns['spatial'][lib]['scalefactors']['microns_per_pixel']`` (written by
        :func:`sthisto.io.to_spatialdata`); else from the spot size.
    microns_per_unit
        Microns per coordinate-system unit (1.0 for a coordinate system in µm).
    spot_diameter_um
        Physical spot diameter (square bins: side); default: the bin size in a
        spatialdata-io Visium HD shapes name (``..._square_008um``).

    Returns
    -------
    AnnData with raw counts in ``X`` (float32 CSR), ``obs``/``var``/``obsm`` of the table,
    ``obsm['spatial']`` (x, y in full-resolution image pixels, replacing the table's own)
    and ``uns['spatial'][library_id]`` with ``images`` (``hires`` in memory; ``fullres``,
    ``fullres_1``… lazy dask levels), ``scalefactors`` (``spot_diameter_fullres``,
    ``microns_per_pixel``, ``tissue_hires_scalef``, ``tissue_fullres_{i}_scalef``) and
    ``metadata`` (element names, coordinate system, ``spot_shape`` ``"circle"``/``"square"``,
    region/instance keys, the image-pixel → coordinate-system affine).
    """
    SpatialData = require_spatialdata()
    if isinstance(sdata, str | os.PathLike):
        sdata = _read_store(sdata)
    if not isinstance(sdata, SpatialData):
        raise TypeError(f"sdata must be a spatialdata.SpatialData or the path of its zarr store, got "
                        f"{type(sdata).__name__}.")
    table_key = _pick(sdata.tables.keys(), table_key, "table", "table_key")
    table = sdata.tables[table_key]
    region, region_key, instance_key = _table_keys(table, table_key)
    if shapes_key is None:
        if len(region) != 1:
            raise ValueError(f"table {table_key!r} annotates {region}; pass shapes_key= to choose one.")
        shapes_key = region[0]
    elif shapes_key not in region:
        raise ValueError(
            f"table {table_key!r} annotates {region}, not {shapes_key!r}: pass the table that "
            f"annotates {shapes_key!r} (table_key=) or shapes_key= one of {region}."
        )
    if shapes_key not in sdata.shapes:
        kind = "labels" if shapes_key in sdata.labels else "points" if shapes_key in sdata.points else None
        if kind:
            raise ValueError(
                f"table {table_key!r} annotates the {kind} element {shapes_key!r}; sthisto needs spot/bin "
                "shapes (for spatialdata-io's visium_hd use annotate_table_by_labels=False)."
            )
        raise KeyError(f"shapes {shapes_key!r} (annotated by table {table_key!r}) are not in the SpatialData object.")
    shapes = sdata.shapes[shapes_key]

    image_key = _pick_image(sdata, image_key, shapes)
    levels = _image_levels(sdata, image_key)
    image = sdata.images[image_key]
    coordinate_system = _coordinate_system(image, shapes, coordinate_system, image_key, shapes_key)
    img_to_cs = element_transform(image, coordinate_system, f"image {image_key!r}")
    shp_to_cs = element_transform(shapes, coordinate_system, f"shapes {shapes_key!r}")
    to_pixels = np.linalg.solve(img_to_cs, shp_to_cs)  # shapes coordinates -> image pixels

    if region_key not in table.obs:
        raise KeyError(f"table {table_key!r} has no obs[{region_key!r}] column (its region_key).")
    rows = table.obs[region_key].astype(str).to_numpy() == shapes_key
    if not rows.all():
        logger.info("table %r: keeping the %d of %d rows annotating %r", table_key, rows.sum(), len(rows), shapes_key)
        table = table[rows]
    if instance_key not in table.obs:
        raise KeyError(f"table {table_key!r} has no obs[{instance_key!r}] column (its instance_key).")
    instances = table.obs[instance_key].to_numpy()
    pos = pd.Index(shapes.index).get_indexer(instances)
    if (pos < 0).any():
        raise ValueError(
            f"{int((pos < 0).sum())} row(s) of table {table_key!r} name instances absent from shapes "
            f"{shapes_key!r} (e.g. {instances[pos < 0][:3].tolist()})."
        )
    centres, diameters, spot_shape = shape_geometry(shapes.iloc[pos], shapes_key)
    xy = centres @ to_pixels[:2, :2].T + to_pixels[:2, 2]
    scale = linear_scale(to_pixels, f"shapes {shapes_key!r} → image {image_key!r}")
    diameter_px = float(np.median(diameters)) * scale
    if np.ptp(diameters) > 0.01 * np.median(diameters):
        logger.warning("spot sizes of %r vary (%.3g-%.3g); using the median", shapes_key, diameters.min(), diameters.max())
    mpp, source = _microns_per_pixel(
        microns_per_pixel, microns_per_unit, spot_diameter_um, image_scale=linear_scale(img_to_cs, f"image {image_key!r}"),
        diameter_px=diameter_px, shapes_key=shapes_key, table=table)
    if not (np.isfinite(mpp) and mpp > 0):
        raise ValueError(f"the pixel size must be a positive number of microns, got {mpp}")
    check_inside(xy, levels[0].shape, where=f"shapes {shapes_key!r} on image {image_key!r}", ids=table.obs_names)

    if layer is not None and layer not in table.layers:
        raise KeyError(f"table {table_key!r} has no layer {layer!r} (layers: {list(table.layers)}).")
    values = table.layers[layer] if layer is not None else table.X
    try:
        counts = counts_csr(values, where=f"table {table_key!r} {'X' if layer is None else f'layer {layer!r}'}")
    except ValueError as err:
        raise ValueError(f"{err} If the raw counts are in a layer, pass layer=.") from None
    adata = AnnData(X=counts, obs=table.obs.copy(), var=table.var.copy(),  # sharing nothing with sdata
                    obsm={k: detach(v) for k, v in table.obsm.items() if k != K.SPATIAL_KEY})
    adata.obsm[K.SPATIAL_KEY] = xy
    library_id = library_id or image_key
    adata.uns[K.SPATIAL_UNS] = {library_id: _spatial_entry(
        levels, mpp=mpp, diameter_px=diameter_px, metadata={
            "platform": "spatialdata", "table_key": table_key, "image_key": image_key, "shapes_key": shapes_key,
            "coordinate_system": coordinate_system, "region_key": region_key, "instance_key": instance_key,
            "spot_shape": spot_shape, "microns_per_pixel_from": source,
            "image_to_coordinate_system": img_to_cs.tolist(),
            **({"spatialdata_path": str(sdata.path)} if getattr(sdata, "path", None) else {}),
        })}
    logger.info("read %d spots of %r on image %r (%d pyramid levels, %.3f µm/px)", adata.n_obs, shapes_key,
                image_key, len(levels), mpp)
    return adata


def _read_store(path: str | os.PathLike):
    """Read a SpatialData zarr store, naming it in any error (missing, damaged or not a SpatialData)."""
    from spatialdata import read_zarr

    path = existing_folder(path, "SpatialData zarr store (written by sdata.write)")
    with reading(path, "SpatialData zarr store", expected="a zarr store written by spatialdata (sdata.write)",
                 fix="check that the store is complete (copy or write it again)",
                 errors=(*DEPENDENCY_ERRORS, RuntimeError)):
        return read_zarr(path)


def _pick_image(sdata, image_key: str | None, shapes) -> str:
    from spatialdata.transformations import get_transformation

    if image_key is not None or len(sdata.images) <= 1:
        if not len(sdata.images):
            raise KeyError("the SpatialData object has no image; sthisto needs the H&E image.")
        return _pick(sdata.images.keys(), image_key, "image", "image_key")
    shape_cs = set(get_transformation(shapes, get_all=True))
    candidates = {k: v for k, v in sdata.images.items() if shape_cs & set(get_transformation(v, get_all=True))}
    if not candidates:
        raise ValueError(f"no image shares a coordinate system with the shapes ({sorted(shape_cs)}); pass image_key=.")

    def n_pixels(item):
        element = item[1]
        first = element if not hasattr(element, "children") else next(iter(element.children.values()))
        first = first if not hasattr(first, "ds") else next(iter(first.ds.data_vars.values()))
        return int(first.sizes["y"]) * int(first.sizes["x"])

    key = max(candidates.items(), key=n_pixels)[0]
    if len(candidates) > 1:
        logger.info("using image %r, the largest of %s (pass image_key= to choose)", key, sorted(candidates))
    return key


def _coordinate_system(image, shapes, given: str | None, image_key: str, shapes_key: str) -> str:
    from spatialdata.transformations import Identity, get_transformation

    img_t, shp_t = get_transformation(image, get_all=True), get_transformation(shapes, get_all=True)
    shared = [cs for cs in img_t if cs in shp_t]
    if given is not None:
        if given not in shared:
            raise KeyError(f"coordinate system {given!r} does not link image {image_key!r} ({sorted(img_t)}) "
                           f"and shapes {shapes_key!r} ({sorted(shp_t)}).")
        return given
    if not shared:
        raise ValueError(f"image {image_key!r} ({sorted(img_t)}) and shapes {shapes_key!r} ({sorted(shp_t)}) share "
                         "no coordinate system; register them (spatialdata.transformations.set_transformation).")
    untransformed = [cs for cs in shared if isinstance(img_t[cs], Identity)]
    return (untransformed or shared)[0]


def level_scale(shape0: tuple[int, ...], shape: tuple[int, ...]) -> float:
    """Image pixels per full-resolution pixel of a pyramid level.

    A level made by integer block averaging (spatialdata's ``xarray_coarsen``, trimming the
    border) has exactly ``1/f`` with ``shape = shape0 // f``; other levels get the width ratio.

    Returns
    -------
    The scale (< 1).
    """
    factor = round(shape0[1] / shape[1])
    if factor >= 1 and shape0[0] // factor == shape[0] and shape0[1] // factor == shape[1]:
        return 1.0 / factor
    return shape[1] / shape0[1]


def _spatial_entry(levels: list, *, mpp: float, diameter_px: float, metadata: dict) -> dict:
    store = metadata.get("spatialdata_path")
    source = f"image {metadata['image_key']!r}" + (f" of the SpatialData store {store}" if store else "")
    hires, hires_scale = _hires(levels, source)
    images = {K.HIRES: hires, K.FULLRES: levels[0]}
    sf = {K.SPOT_DIAMETER: diameter_px, K.MICRONS_PER_PIXEL: mpp, K.SCALEF_HIRES: hires_scale}
    for i, level in enumerate(levels[1:], start=1):
        key = K.fullres_level_key(i)
        images[key] = level
        sf[K.scalef_key(key)] = level_scale(levels[0].shape, level.shape)
    return {"images": images, "scalefactors": sf, "metadata": metadata}
