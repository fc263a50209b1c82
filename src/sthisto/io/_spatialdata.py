"""sthisto results → SpatialData elements (tables, shapes, labels) that ``sdata.write`` round-trips.

Element names (``{lib}`` is the library id, ``{shapes}`` the spot shapes):

- ``{shapes}_sthisto`` — table annotating the spot shapes: ``X`` = predicted expression
  (``layers['sthisto_pred']`` of the predicted genes), ``obsm`` = sthisto feature blocks,
  ``var`` = per-gene metrics, ``uns`` = prediction/metric records.
- ``{lib}_nuclei`` — circles (centroid, radius of the disk of equal area) in the image's
  pixel frame, with the image's transformations; ``{lib}_nuclei_table`` annotates them with
  per-nucleus morphology in µm and the spot each nucleus belongs to.
- ``{lib}_nuclei_labels`` — the label image, when ``pp.segment_nuclei(labels_path=...)`` wrote one.
- A section not read from SpatialData also gets ``{lib}_image`` (multiscale), ``{lib}_spots``
  (circles) and ``{lib}_counts`` (raw counts, scanpy-style ``uns['spatial']`` scale factors),
  all in the coordinate system ``{lib}`` (full-resolution pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from sthisto import _constants as K
from sthisto._image import fullres_image, microns_per_pixel, spatial_entry, spot_diameter_px
from sthisto._logging import logger
from sthisto._spatialdata import require_spatialdata
from sthisto._validate import has_spots, name_list, spatial_coords
from sthisto._validate import library_id as _library_id

REGION_KEY = "region"
INSTANCE_KEY = "instance_id"
_MIN_LEVEL_PX = 512  # coarsest pyramid level of a written image: longer side at least this


def _scale_factors(shape: tuple[int, ...]) -> list[int]:
    factors, side = [], max(shape[:2])
    while side // 2 >= _MIN_LEVEL_PX:
        factors.append(2)
        side //= 2
    return factors


def _base_elements(adata: AnnData, lib: str, counts_key: str) -> dict:
    """Image, spot circles and the counts table of a section that came from files, not SpatialData."""
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity

    img = fullres_image(adata, lib)
    if img is None:
        raise KeyError(f"section {lib!r} has no full-resolution image to write (uns['spatial'][{lib!r}]).")
    try:
        import dask.array as da

        data = da.from_array(img, chunks=(2048, 2048, 3)) if not isinstance(img, da.Array) else img
    except ImportError:  # pragma: no cover - dask comes with spatialdata
        data = np.asarray(img)
    transform = {lib: Identity()}
    image = Image2DModel.parse(data.transpose(2, 0, 1), dims=("c", "y", "x"), rgb=True,
                               scale_factors=_scale_factors(img.shape) or None, transformations=transform,
                               chunks=(3, 2048, 2048))
    xy = spatial_coords(adata)
    instances = np.arange(adata.n_obs)
    spots = ShapesModel.parse(xy, geometry=0, radius=np.full(adata.n_obs, spot_diameter_px(adata, lib) / 2.0),
                              index=instances, transformations=transform)
    counts = AnnData(X=sp.csr_matrix(adata.X), obs=adata.obs.copy(), var=adata.var.copy())
    counts.obs[REGION_KEY] = pd.Categorical([f"{lib}_spots"] * adata.n_obs)
    counts.obs[INSTANCE_KEY] = instances
    sf = {k: v for k, v in spatial_entry(adata, lib).get("scalefactors", {}).items()
          if k in (K.SPOT_DIAMETER, K.MICRONS_PER_PIXEL)}
    sf[K.MICRONS_PER_PIXEL] = microns_per_pixel(adata, lib)
    counts.uns[K.SPATIAL_UNS] = {lib: {"scalefactors": sf}}
    return {
        f"{lib}_image": image,
        f"{lib}_spots": spots,
        counts_key: TableModel.parse(counts, region=f"{lib}_spots", region_key=REGION_KEY, instance_key=INSTANCE_KEY),
    }


def _feature_blocks(adata: AnnData, features: Sequence[str] | None) -> dict[str, np.ndarray]:
    keys = [k for k in adata.obsm if k.startswith("sthisto_")] if features is None else [
        K.MODALITY_KEYS.get(f, f) for f in name_list(features, "features")]
    out = {}
    for key in keys:
        if key not in adata.obsm:
            raise KeyError(f"adata.obsm[{key!r}] is missing (features=); available: {list(adata.obsm)}")
        out[key] = adata.obsm[key]
    return out


def _results_table(adata: AnnData, *, shapes_key: str, region_key: str, instance_key: str,
                   features: Sequence[str] | None, pred_key: str) -> AnnData:
    from spatialdata.models import TableModel

    genes: list[str] = []
    if pred_key in adata.layers:
        record = adata.uns.get(pred_key, {})
        genes = [str(g) for g in record.get("genes", [])] or list(
            adata.var_names[np.isfinite(np.asarray(adata.layers[pred_key])).any(0)])
    pos = adata.var_names.get_indexer(genes)
    x = np.asarray(adata.layers[pred_key])[:, pos] if genes else np.zeros((adata.n_obs, 0), np.float32)
    var = adata.var.iloc[pos][[c for c in adata.var.columns if c.startswith("sthisto_")]].copy()
    obs = pd.DataFrame({region_key: pd.Categorical([shapes_key] * adata.n_obs),
                        instance_key: adata.obs[instance_key].to_numpy()}, index=adata.obs_names.copy())
    for col in adata.obs.columns:
        if col.startswith("sthisto_"):
            obs[col] = adata.obs[col].to_numpy()
    table = AnnData(X=np.asarray(x, dtype=np.float32), obs=obs, var=var,
                    obsm={k: (v.copy() if isinstance(v, pd.DataFrame) else np.asarray(v))
                          for k, v in _feature_blocks(adata, features).items()})
    for key in (pred_key, K.METRICS):
        if key in adata.uns:
            table.uns[key] = adata.uns[key]
    return TableModel.parse(table, region=shapes_key, region_key=region_key, instance_key=instance_key)


def _nuclei_elements(adata: AnnData, lib: str, nuclei_key: str, transformations: dict) -> dict:
    from spatialdata.models import Labels2DModel, ShapesModel, TableModel

    from sthisto.pp.nuclei import to_microns
    from sthisto.pp.nuclei._stored import nuclei_pixel_size, read_label_image, stored_nuclei

    table, params = stored_nuclei(adata, nuclei_key, columns=("id", "x", "y", "area"), allow_empty=True)
    mpp = nuclei_pixel_size(adata, nuclei_key, params, lib)
    ids = table["id"].to_numpy(np.int64)
    radius = np.sqrt(np.maximum(table["area"].to_numpy(np.float64), 1.0) / np.pi)
    shapes_name = f"{lib}_nuclei"
    circles = ShapesModel.parse(table[["x", "y"]].to_numpy(np.float64), geometry=0, radius=radius, index=ids,
                                transformations=transformations)
    morph = to_microns(table, mpp)
    obs = pd.DataFrame({REGION_KEY: pd.Categorical([shapes_name] * len(ids)), INSTANCE_KEY: ids,
                        "spot": table["spot"].astype(str).to_numpy() if "spot" in table else ""},
                       index=pd.Index(ids.astype(str), name=None))
    nuclei = AnnData(X=morph.to_numpy(np.float32), obs=obs, var=pd.DataFrame(index=list(morph.columns)))
    nuclei.uns["params"] = {k: v for k, v in params.items() if v is not None}
    out = {shapes_name: circles, f"{lib}_nuclei_table": TableModel.parse(
        nuclei, region=shapes_name, region_key=REGION_KEY, instance_key=INSTANCE_KEY)}
    labels_path = params.get("labels_path")
    if labels_path:
        import dask.array as da

        image = fullres_image(adata, lib)
        labels = read_label_image(labels_path, None if image is None else image.shape)
        out[f"{lib}_nuclei_labels"] = Labels2DModel.parse(
            da.from_array(labels, chunks=(2048, 2048)), dims=("y", "x"), transformations=transformations)
    return out


def to_spatialdata(
    adata: AnnData,
    sdata=None,
    *,
    library_id: str | None = None,
    features: Sequence[str] | None = None,
    pred_key: str = K.PRED,
    nuclei_key: str = K.NUCLEI,
):
    """Write sthisto's results into a :class:`spatialdata.SpatialData` object.

    Predictions and features become a table annotating the spot shapes, nuclei a shapes
    element (circles with per-nucleus morphology in an annotating table) and, when
    segmentation wrote one, a labels element; ``sdata.write(path)`` stores them as zarr and
    spatialdata-plot draws them (``sdata.pl.render_shapes(f"{shapes}", color=gene,
    table_name=f"{shapes}_sthisto")``).

    Parameters
    ----------
    adata
        A section processed by sthisto (``pp``/``tl`` keys present or not).
    sdata
        The SpatialData the section was read from with :func:`sthisto.read.spatialdata`
        (elements are added to it, in place). ``None`` builds a new object holding the
        image, the spot circles and the counts as well.
    library_id
        Section in ``uns['spatial']`` (the only one by default).
    features
        Modality names or ``obsm`` keys stored in the table's ``obsm``; ``None``: every
        ``obsm`` key starting with ``sthisto_``.
    pred_key
        Layer of the predictions (:func:`sthisto.tl.predict`).
    nuclei_key
        ``uns`` key of the nuclei (:func:`sthisto.pp.segment_nuclei`); skipped when absent.

    Returns
    -------
    The SpatialData object (``sdata`` itself when given), with the elements listed in
    :mod:`sthisto.io._spatialdata`.
    """
    SpatialData = require_spatialdata()
    from spatialdata.transformations import Identity, get_transformation

    if not isinstance(adata, AnnData):
        raise TypeError(f"expected an AnnData, got {type(adata).__name__}")
    has_spots(adata)
    lib = _library_id(adata, library_id)
    meta = spatial_entry(adata, lib).get("metadata", {})
    from_sdata = meta.get("platform") == "spatialdata"
    if sdata is None:
        sdata = SpatialData()
        adata = adata.copy()
        base = _base_elements(adata, lib, f"{lib}_counts")
        for name, element in base.items():
            sdata[name] = element
        shapes_key, region_key, instance_key = f"{lib}_spots", REGION_KEY, INSTANCE_KEY
        adata.obs[instance_key] = np.arange(adata.n_obs)
        transformations = {lib: Identity()}
    else:
        if not isinstance(sdata, SpatialData):
            raise TypeError(f"sdata must be a spatialdata.SpatialData or None, got {type(sdata).__name__}")
        if not from_sdata:
            raise ValueError(f"section {lib!r} was not read with sthisto.read.spatialdata, so it has no shapes in "
                             "sdata to annotate; call to_spatialdata(adata) without sdata to build a new object.")
        shapes_key, region_key, instance_key = meta["shapes_key"], meta["region_key"], meta["instance_key"]
        for key, kind in ((shapes_key, "shapes"), (meta["image_key"], "images")):
            if key not in getattr(sdata, kind):
                raise KeyError(f"{kind} {key!r}, which section {lib!r} was read from, is not in sdata.")
        if instance_key not in adata.obs:
            raise KeyError(f"adata.obs[{instance_key!r}] (the table's instance key) is missing; it links "
                           "spots to shapes.")
        transformations = dict(get_transformation(sdata.images[meta["image_key"]], get_all=True))
    written = []
    elements = {}
    if pred_key in adata.layers or _feature_blocks(adata, features):
        elements[f"{shapes_key}_sthisto"] = _results_table(
            adata, shapes_key=shapes_key, region_key=region_key, instance_key=instance_key,
            features=features, pred_key=pred_key)
    if nuclei_key in adata.uns and "nuclei" in adata.uns[nuclei_key]:
        elements.update(_nuclei_elements(adata, lib, nuclei_key, transformations))
    for name, element in elements.items():
        if name in sdata:
            logger.info("replacing SpatialData element %r", name)
            del sdata[name]
        sdata[name] = element
        written.append(name)
    logger.info("wrote SpatialData elements %s", written)
    return sdata
