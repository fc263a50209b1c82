"""Square bins (Visium HD): which nuclei a bin holds, nuclei features per bin, bins per nucleus.

Visium HD bins tile the slide on a square lattice given by ``obs['array_row']`` /
``obs['array_col']``. The lattice is fitted once (least squares, array index → pixel), so
a nucleus centroid maps to the bin whose square holds it exactly, whatever the rotation of
the slide against the image. Pooling reuses :func:`sthisto.pp.nuclei.pool_spots` (each
nucleus is placed at the centre of every bin it belongs to), so bins and round spots get
the same features with the same names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._errors import InputError
from sthisto._image import fullres_image
from sthisto._logging import logger
from sthisto._utils import Outputs, copy_or_self, detach
from sthisto._validate import (
    affordable,
    anndata,
    has_spots,
    integer,
    key_name,
    number,
    raw_counts,
    spatial_coords,
)
from sthisto._validate import library_id as _library_id
from sthisto.pp.nuclei import (
    MORPHOLOGY_COLUMNS,
    TOPOLOGY_COLUMNS,
    delaunay_features,
    pool_spots,
    to_microns,
)
from sthisto.pp.nuclei._stored import (
    nuclei_pixel_size,
    nuclei_to_pool,
    read_label_image,
    stored_nuclei,
)

from ._graph import lattice_indices

ROW_KEY, COL_KEY = "array_row", "array_col"


def fit_lattice(rows: np.ndarray, cols: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Least-squares affine map from lattice indices (col, row) to pixel centres (x, y).

    Returns
    -------
    (3, 3) float64 matrix ``A`` with ``[x, y, 1]ᵀ = A [col, row, 1]ᵀ``.
    """
    rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
    if len(np.unique(rows)) < 2 or len(np.unique(cols)) < 2:
        raise ValueError("the bins span fewer than two lattice rows or columns; cannot fit the lattice.")
    design = np.column_stack([cols, rows, np.ones_like(cols)])
    coef, *_ = np.linalg.lstsq(design, np.asarray(xy, np.float64), rcond=None)
    out = np.eye(3)
    out[:2, :] = coef.T
    residual = np.abs(design @ coef - xy).max()
    pitch = np.sqrt(abs(np.linalg.det(out[:2, :2])))
    if residual > 0.05 * pitch:
        raise ValueError(f"the bin centres are not on a square lattice of obs[{ROW_KEY!r}]/obs[{COL_KEY!r}] "
                         f"(largest residual {residual:.3g} px for a {pitch:.3g} px pitch).")
    return out


def bin_membership(points: np.ndarray, rows: np.ndarray, cols: np.ndarray, lattice: np.ndarray,
                   *, context: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (point, bin) for points inside a bin's square, or its ``(2·context+1)²`` block.

    Parameters
    ----------
    points
        ``(n, 2)`` pixel coordinates (x, y), e.g. nucleus centroids.
    rows, cols
        Lattice indices of the bins.
    lattice
        Output of :func:`fit_lattice`.
    context
        ``0``: a point belongs to the bin whose square holds it; ``k``: also to the bins up
        to ``k`` rows/columns away (a square neighbourhood of ``2k + 1`` bins a side).

    Returns
    -------
    ``(point_index, bin_index)`` int64 arrays, one entry per membership.
    """
    points = np.asarray(points, np.float64).reshape(-1, 2)
    inv = np.linalg.inv(lattice)
    frac = points @ inv[:2, :2].T + inv[:2, 2]  # (col, row), fractional
    pc, pr = np.floor(frac[:, 0] + 0.5).astype(np.int64), np.floor(frac[:, 1] + 0.5).astype(np.int64)
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    r0, c0 = rows.min() - context - 1, cols.min() - context - 1
    width = cols.max() - c0 + context + 2
    keys = (rows - r0) * width + (cols - c0)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    point_idx, bin_idx = [], []
    for dr in range(-context, context + 1):
        for dc in range(-context, context + 1):
            r, c = pr + dr, pc + dc
            ok = (r >= r0) & (c >= c0) & (c - c0 < width)
            q = (r - r0) * width + (c - c0)
            pos = np.searchsorted(sorted_keys, q)
            hit = ok & (pos < len(sorted_keys))
            hit[hit] = sorted_keys[pos[hit]] == q[hit]
            point_idx.append(np.flatnonzero(hit))
            bin_idx.append(order[pos[hit]])
    return np.concatenate(point_idx), np.concatenate(bin_idx)


def _lattice_of(adata: AnnData, spatial_key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = lattice_indices(adata, ROW_KEY, COL_KEY)
    return rows, cols, fit_lattice(rows, cols, spatial_coords(adata, spatial_key))


def _pool(features: pd.DataFrame, point_idx, bin_idx, bin_xy, index) -> pd.DataFrame:
    """Average ``features`` over each bin's members with :func:`pool_spots`.

    Every membership is placed exactly at its bin's centre, so a tiny radius selects it.
    """
    return pool_spots(features.iloc[point_idx].reset_index(drop=True), bin_xy[bin_idx], bin_xy,
                      radius=1e-6, index=index, fill="nan")


@doc_params
def bin_nuclei_features(
    adata: AnnData,
    *,
    context: int = 0,
    nuclei_key: str = K.NUCLEI,
    library_id: str | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    morphology_key: str = K.MORPHOLOGY,
    topology_key: str = K.TOPOLOGY,
    copy: bool = False,
) -> AnnData | None:
    """Pool nucleus morphology and topology into square bins (Visium HD).

    The bin version of :func:`sthisto.pp.nuclei_features`: a nucleus belongs to the bin
    whose square holds its centroid (exactly, on the lattice fitted to ``array_row`` /
    ``array_col`` and the bin centres), or with ``context = k`` to every bin of the
    ``(2k + 1) × (2k + 1)`` block around it, so 8 µm bins (smaller than most nuclei) can
    see their neighbourhood. Same columns as ``nuclei_features``; density per mm² of the
    pooling square. Bins without nuclei get the section mean and ``no_nuclei = 1``.

    Parameters
    ----------
    {adata}
    context
        Neighbouring bins pooled on each side (0: the bin alone).
    nuclei_key
        Key in ``adata.uns`` written by :func:`sthisto.pp.segment_nuclei`.
    {library_id}
    {spatial_key}
    morphology_key, topology_key
        Keys in ``adata.obsm``.
    {copy}

    Returns
    -------
    {returns_copy} Sets ``obsm[morphology_key]`` and ``obsm[topology_key]`` (DataFrames
    indexed by ``obs_names``, columns as :func:`sthisto.pp.nuclei_features`) and
    ``uns[nuclei_key]['features_params']``.
    """
    context = integer(context, "context", minimum=0, fix="give the number of neighbouring bins pooled on each side")
    adata = copy_or_self(adata, copy)
    morphology_key, topology_key = key_name(morphology_key, "morphology_key"), key_name(topology_key, "topology_key")
    table, params, lib, mpp = nuclei_to_pool(adata, nuclei_key, library_id)
    rows, cols, lattice = _lattice_of(adata, spatial_key)
    span = int(max(np.ptp(rows), np.ptp(cols)))
    if context > span:
        raise InputError(f"context={context} bins reaches beyond the whole lattice ({span + 1} bins across); "
                         "give a context of a few bins.")
    affordable(16.0 * len(table) * (2 * context + 1) ** 2, f"pooling {len(table)} nuclei over "
               f"{2 * context + 1}×{2 * context + 1} bins (context={context})", fix="lower context")
    bin_xy = spatial_coords(adata, spatial_key)
    centroids = table[["x", "y"]].to_numpy(np.float64)
    point_idx, bin_idx = bin_membership(centroids, rows, cols, lattice, context=context)

    morph = to_microns(table, mpp)
    theta = table["orientation"].to_numpy(np.float64)
    morph["cos2"], morph["sin2"] = np.cos(2 * theta), np.sin(2 * theta)
    m_bin = _pool(morph, point_idx, bin_idx, bin_xy, adata.obs_names)
    m_bin["orientation_coherence"] = np.hypot(m_bin.pop("cos2"), m_bin.pop("sin2"))
    side_mm = np.sqrt(abs(np.linalg.det(lattice[:2, :2]))) * mpp * (2 * context + 1) / 1000.0
    m_bin.insert(m_bin.columns.get_loc("nucleus_count") + 1, "nucleus_density_per_mm2",
                 m_bin["nucleus_count"] / side_mm**2)
    topo = delaunay_features(centroids, mpp)
    t_bin = _pool(topo, point_idx, bin_idx, bin_xy, adata.obs_names).drop(columns="nucleus_count")
    order = [*MORPHOLOGY_COLUMNS, "orientation_coherence", "nucleus_count", "nucleus_density_per_mm2", "no_nuclei"]
    m_bin, t_bin = m_bin[order], t_bin[[*TOPOLOGY_COLUMNS, "no_nuclei"]]
    empty = m_bin["no_nuclei"].to_numpy() > 0
    if empty.any():
        logger.info("%d of %d bins hold no nucleus centroid (context %d); filled with the section mean",
                    int(empty.sum()), adata.n_obs, context)
    out = Outputs()
    out.add("obsm", morphology_key, m_bin.fillna(m_bin.mean()).fillna(0.0))
    out.add("obsm", topology_key, t_bin.fillna(t_bin.mean()).fillna(0.0))
    out.add("uns", nuclei_key, {**adata.uns[nuclei_key], "features_params": {
        "pooling": "square bins", "context": context, "microns_per_pixel": mpp,
        "bin_pitch_px": float(np.sqrt(abs(np.linalg.det(lattice[:2, :2])))), "n_empty_spots": int(empty.sum())}})
    out.write(adata)
    return adata if copy else None


@doc_params
def bins_to_nuclei(
    adata: AnnData,
    *,
    nuclei_key: str = K.NUCLEI,
    library_id: str | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    max_distance_um: float | None = None,
) -> AnnData:
    """Sum bin counts per nucleus: one observation per nucleus instead of per bin.

    A bin goes to the nucleus whose label covers its centre when
    ``pp.segment_nuclei(labels_path=...)`` wrote a label image, else to the nearest nucleus
    centroid within that nucleus' equivalent radius (``sqrt(area / π)``) or
    ``max_distance_um``. Meant for 2 µm bins (several per nucleus); with 8 µm bins most
    nuclei get one bin or none.

    Parameters
    ----------
    {adata}
    nuclei_key
        Key in ``adata.uns`` written by :func:`sthisto.pp.segment_nuclei`.
    {library_id}
    {spatial_key}
    max_distance_um
        Assignment radius when there is no label image (default: each nucleus' own radius).

    Returns
    -------
    A new AnnData (nuclei with at least one bin × genes): ``X`` summed counts (CSR),
    ``obs`` (``nucleus_id``, ``n_bins``), ``obsm['spatial']`` (centroids, full-res pixels),
    ``obsm['sthisto_morphology']`` (per-nucleus µm features, :data:`MORPHOLOGY_COLUMNS`),
    ``obsm['sthisto_topology']`` (Delaunay over all nuclei) and the section's
    ``uns['spatial']`` with ``spot_diameter_fullres`` set to the median nucleus diameter.
    """
    from scipy.spatial import cKDTree

    has_spots(anndata(adata))
    table, params = stored_nuclei(adata, nuclei_key, columns=("id", "x", "y", "area", "orientation"))
    lib = _library_id(adata, library_id if library_id is not None else params.get("library_id"))
    mpp = nuclei_pixel_size(adata, nuclei_key, params, lib)
    if max_distance_um is not None:
        max_distance_um = number(max_distance_um, "max_distance_um", positive=True,
                                 fix="give a distance in µm, or None for each nucleus' own radius")
    raw_counts(adata, where="adata")  # summed per nucleus: normalised values would not add up
    xy = spatial_coords(adata, spatial_key)
    ids = table["id"].to_numpy(np.int64)
    if params.get("labels_path"):
        image = fullres_image(adata, lib)
        labels = read_label_image(params["labels_path"], None if image is None else image.shape)
        r = np.clip(np.floor(xy[:, 1] + 0.5).astype(np.int64), 0, labels.shape[0] - 1)
        c = np.clip(np.floor(xy[:, 0] + 0.5).astype(np.int64), 0, labels.shape[1] - 1)
        label = np.asarray(labels[r, c]).astype(np.int64)
        pos = pd.Index(ids).get_indexer(label)
        owner = np.where(label > 0, pos, -1)
    else:
        radius = np.sqrt(table["area"].to_numpy(np.float64) / np.pi)
        dist, nearest = cKDTree(table[["x", "y"]].to_numpy(np.float64)).query(xy, k=1)
        limit = radius[nearest] if max_distance_um is None else max_distance_um / mpp
        owner = np.where(dist <= limit, nearest, -1)
    hit = owner >= 0
    member = sp.csr_matrix((np.ones(int(hit.sum())), (owner[hit], np.flatnonzero(hit))), shape=(len(ids), adata.n_obs))
    n_bins = np.asarray(member.sum(1)).ravel()
    keep = np.flatnonzero(n_bins > 0)
    x = (member[keep] @ sp.csr_matrix(adata.X)).tocsr().astype(np.float32)
    kept = table.iloc[keep]
    names = pd.Index([f"nucleus_{i}" for i in ids[keep]])
    out = AnnData(X=x, obs=pd.DataFrame({"nucleus_id": ids[keep], "n_bins": n_bins[keep].astype(np.int64)},
                                        index=names), var=adata.var.copy())
    out.obsm[K.SPATIAL_KEY] = kept[["x", "y"]].to_numpy(np.float64)
    out.obsm[K.MORPHOLOGY] = to_microns(kept, mpp).set_index(names)
    out.obsm[K.TOPOLOGY] = delaunay_features(table[["x", "y"]].to_numpy(np.float64), mpp).iloc[keep].set_index(names)
    spatial = detach(adata.uns[K.SPATIAL_UNS])  # the new AnnData shares nothing with its input
    spatial[lib]["scalefactors"] = {**spatial[lib]["scalefactors"],
                                    K.SPOT_DIAMETER: float(2 * np.median(np.sqrt(kept["area"] / np.pi)))}
    out.uns[K.SPATIAL_UNS] = spatial
    logger.info("%d of %d bins assigned to %d nuclei", int(hit.sum()), adata.n_obs, len(keep))
    return out
