"""``sthisto.pp.nuclei_features``: nuclei pooled into per-spot morphology (X_M) and topology (X_T)."""

from __future__ import annotations

from typing import Any

import numpy as np
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._image import spot_diameter_px
from sthisto._logging import logger
from sthisto._utils import Outputs, copy_or_self
from sthisto._validate import key_name, number, one_of, spatial_coords
from sthisto.pp._parallel import check_client, runner

from ._columns import (
    NO_NUCLEI,
    NUCLEUS_COUNT,
    ORIENTATION_COHERENCE,
    SPOT_MORPHOLOGY_COLUMNS,
    SPOT_TOPOLOGY_COLUMNS,
)
from ._measure import to_microns
from ._pooling import fill_missing, pool_spot_blocks
from ._stored import nuclei_to_pool
from ._topology import delaunay_features


@doc_params
def nuclei_features(
    adata: AnnData,
    *,
    nuclei_key: str = K.NUCLEI,
    library_id: str | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    spot_diameter: float | None = None,
    fill: str = "mean",
    morphology_key: str = K.MORPHOLOGY,
    topology_key: str = K.TOPOLOGY,
    client: Any = None,
    copy: bool = False,
) -> AnnData | None:
    """Pool nucleus morphology and Delaunay topology into per-spot features.

    Morphology per nucleus comes from :func:`sthisto.pp.segment_nuclei` (Numba passes
    over the label image, convex hull features equal to skimage's ``regionprops``) and is
    converted to µm. Topology: one Delaunay triangulation over
    all nuclei of the section gives each nucleus the mean, max and min distance to its
    neighbours and its number of neighbours. A spot takes the mean over the nuclei whose
    centroid lies in its disk (orientation as the mean ``|cos 2θ|``), plus the nucleus count
    and density, and ``orientation_coherence`` = ``|mean(exp(2iθ))|`` (1 = all nuclei
    parallel).

    Parameters
    ----------
    {adata}
    nuclei_key
        Key in ``adata.uns`` written by :func:`sthisto.pp.segment_nuclei`.
    {library_id}
    {spatial_key}
    spot_diameter
        Spot diameter in full-resolution pixels; ``None`` uses
        ``scalefactors['spot_diameter_fullres']``.
    fill
        Feature values of spots without nuclei: ``"mean"`` (section mean over spots with
        nuclei; default) or ``"zero"``. Such spots are flagged by ``no_nuclei = 1``.
    morphology_key, topology_key
        Keys in ``adata.obsm``.
    client
        A ``dask.distributed.Client`` (or ``"auto"``: the client in force) whose workers pool
        blocks of spots of 4096 px, each receiving only its spots and their nuclei; the
        result equals the local run. The Delaunay triangulation, one per section, stays in
        the caller. ``None`` (default) runs locally.
    {copy}

    Returns
    -------
    {returns_copy} Sets

    ``adata.obsm[morphology_key]``
        DataFrame (index ``obs_names``): ``area_um2``, ``perimeter_um``, ``major_axis_um``,
        ``minor_axis_um``, ``eccentricity``, ``orientation_abs_cos2``, ``extent``,
        ``circularity``, ``aspect_ratio``, ``convex_area_um2``, ``solidity``,
        ``convex_perimeter_um``, ``skeleton_length_um`` (skeleton pixels × pixel size),
        ``orientation_coherence``, ``nucleus_count``,
        ``nucleus_density_per_mm2``, ``no_nuclei``.
    ``adata.obsm[topology_key]``
        DataFrame: ``delaunay_mean_dist_um``, ``delaunay_max_dist_um``,
        ``delaunay_min_dist_um``, ``delaunay_degree``, ``no_nuclei``.
    ``adata.uns[nuclei_key]['features_params']``
        Parameters of this call.
    """
    adata = copy_or_self(adata, copy)
    fill = one_of(fill, "fill", ("mean", "zero"))
    client = check_client(client)
    morphology_key, topology_key = key_name(morphology_key, "morphology_key"), key_name(topology_key, "topology_key")
    table, params, lib, mpp = nuclei_to_pool(adata, nuclei_key, library_id)
    if spot_diameter is None:
        diameter = spot_diameter_px(adata, lib)
    else:
        diameter = number(spot_diameter, "spot_diameter", positive=True, fix="give the spot diameter in "
                          "full-resolution pixels, or None for scalefactors['spot_diameter_fullres']")
    radius = diameter / 2
    xy = spatial_coords(adata, spatial_key)
    centroids = table[["x", "y"]].to_numpy(np.float64)

    morph = to_microns(table, mpp)
    theta = table["orientation"].to_numpy(np.float64)
    morph["cos2"] = np.cos(2 * theta)
    morph["sin2"] = np.sin(2 * theta)
    topo = delaunay_features(centroids, mpp)
    with runner(client=client, n_jobs=1) as run:
        m_spot = pool_spot_blocks(morph, centroids, xy, radius, index=adata.obs_names, microns_per_pixel=mpp,
                                  executor=run, what="morphology block")
        t_spot = pool_spot_blocks(topo, centroids, xy, radius, index=adata.obs_names, executor=run,
                                  what="topology block")
    m_spot[ORIENTATION_COHERENCE] = np.hypot(m_spot.pop("cos2"), m_spot.pop("sin2"))

    empty = m_spot[NO_NUCLEI].to_numpy() > 0
    if empty.any():
        logger.warning("%d of %d spots contain no nucleus centroid; flagged in obsm[%r]['no_nuclei'] "
                       "and filled with %s.", int(empty.sum()), adata.n_obs, morphology_key,
                       "the section mean" if fill == "mean" else "zeros")
    m_spot = fill_missing(m_spot[list(SPOT_MORPHOLOGY_COLUMNS)], fill)
    t_spot = fill_missing(t_spot.drop(columns=NUCLEUS_COUNT)[list(SPOT_TOPOLOGY_COLUMNS)], fill)
    out = Outputs()
    out.add("obsm", morphology_key, m_spot)
    out.add("obsm", topology_key, t_spot)
    out.add("uns", nuclei_key, {**adata.uns[nuclei_key], "features_params": {
        "spot_diameter_px": diameter, "fill": fill, "microns_per_pixel": mpp, "n_empty_spots": int(empty.sum())}})
    out.write(adata)
    return adata if copy else None

