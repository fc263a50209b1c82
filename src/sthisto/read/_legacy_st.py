"""Reader for the legacy Spatial Transcriptomics (ST) format used by HER2ST."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._logging import logger

from ._common import check_inside, image_entry, integer_counts, require_file

ST_SPOT_PITCH_UM = 200.0  # centre-to-centre distance of grid neighbours on legacy ST arrays


def _read_counts(path) -> pd.DataFrame:
    path = require_file(path, "counts file")
    try:
        counts = pd.read_csv(path, sep="\t", index_col=0)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise ValueError(f"cannot parse counts file {path}: {err}") from err
    if counts.shape[1] == 0 or counts.shape[0] == 0:
        raise ValueError(f"counts file {path} has no spots or no genes (tab-separated expected).")
    bad = ~counts.index.astype(str).str.fullmatch(r"\d+x\d+")
    if bad.any():
        raise ValueError(
            f"counts file {path}: row names must be spot ids '{{x}}x{{y}}', e.g. '10x21'; "
            f"got {counts.index[bad][:3].tolist()}"
        )
    if not counts.index.is_unique:
        raise ValueError(f"counts file {path} has duplicated spot ids.")
    counts.index = counts.index.astype(str)
    return counts


def _read_spots(path) -> pd.DataFrame:
    path = require_file(path, "spot selection file")
    spots = pd.read_csv(path, sep="\t")
    missing = {"x", "y", "pixel_x", "pixel_y"} - set(spots.columns)
    if missing:
        raise ValueError(f"spot file {path} lacks columns {sorted(missing)} (x, y, pixel_x, pixel_y).")
    if "selected" in spots.columns:
        spots = spots[spots["selected"].astype(int) == 1]
    spots.index = spots["x"].astype(int).astype(str) + "x" + spots["y"].astype(int).astype(str)
    if not spots.index.is_unique:
        raise ValueError(f"spot file {path} has duplicated (x, y) spot ids.")
    return spots


def pixel_size_from_grid(spots: pd.DataFrame, pitch_um: float = ST_SPOT_PITCH_UM) -> float:
    """Microns per pixel from a least-squares fit of pixel vs array coordinates."""
    ax = spots["new_x"] if "new_x" in spots else spots["x"]
    ay = spots["new_y"] if "new_y" in spots else spots["y"]
    if ax.nunique() < 2 or ay.nunique() < 2:
        raise ValueError("cannot derive the pixel size from fewer than two grid rows and columns; "
                         "pass microns_per_pixel=.")
    sx = np.polyfit(ax.to_numpy(float), spots["pixel_x"].to_numpy(float), 1)[0]
    sy = np.polyfit(ay.to_numpy(float), spots["pixel_y"].to_numpy(float), 1)[0]
    return float(pitch_um / np.mean([abs(sx), abs(sy)]))


def legacy_st(
    counts: str | os.PathLike,
    spots: str | os.PathLike,
    image: str | os.PathLike,
    *,
    library_id: str | None = None,
    spot_diameter_um: float = 100.0,
    microns_per_pixel: float | None = None,
    load_fullres: bool = False,
) -> AnnData:
    """Read a legacy ST section (HER2ST format) into AnnData.

    Parameters
    ----------
    counts
        Spots × genes count table (tsv or tsv.gz) whose row names are ``"{x}x{y}"``.
    spots
        Spot selection table (tsv) with columns ``x, y, pixel_x, pixel_y`` (and optionally
        ``new_x, new_y, selected``); only ``selected == 1`` rows are kept.
    image
        Full-resolution H&E image (JPEG, PNG, TIFF or ``.npy``) the pixel coordinates refer to.
    library_id
        Key in ``uns['spatial']``; defaults to the counts file name without extensions.
    spot_diameter_um
        Spot diameter in microns (100 µm on legacy ST arrays).
    microns_per_pixel
        Pixel size of the image. ``None`` derives it from the spot grid (200 µm pitch).
    load_fullres
        Keep the full-resolution image in memory (``images['fullres']``). By default only
        its path is stored (``metadata['fullres_path']``) and it is read when needed.

    Returns
    -------
    AnnData with raw counts in ``X`` (CSR), ``obs[['array_row', 'array_col']]``,
    ``obsm['spatial']`` (x, y in full-resolution pixels) and ``uns['spatial'][library_id]``
    with the ``hires`` image and ``scalefactors`` (``tissue_hires_scalef``,
    ``spot_diameter_fullres``, ``microns_per_pixel``), compatible with ``scanpy.pl.spatial``.
    Spots present in only one of the two tables are dropped, and their number logged.
    """
    table = _read_counts(counts)
    selection = _read_spots(spots)
    shared = table.index.intersection(selection.index, sort=False)
    if len(shared) == 0:
        raise ValueError(
            f"no spot ids are shared by {counts} and {spots} (e.g. counts {table.index[:2].tolist()}, "
            f"spots {selection.index[:2].tolist()}); do the files belong to the same section?"
        )
    dropped_counts, dropped_spots = len(table) - len(shared), len(selection) - len(shared)
    if dropped_counts or dropped_spots:
        logger.warning(
            "dropped %d spot(s) only in the counts and %d only in the spot file", dropped_counts, dropped_spots
        )
    table, selection = table.loc[shared], selection.loc[shared]
    x_counts = integer_counts(table.to_numpy(), where=str(counts))
    if microns_per_pixel is None:
        microns_per_pixel = pixel_size_from_grid(selection)
    if not (np.isfinite(microns_per_pixel) and microns_per_pixel > 0):
        raise ValueError(f"microns_per_pixel must be positive, got {microns_per_pixel}")
    library_id = library_id or os.path.basename(str(counts)).split(".")[0]
    scalefactors = {K.SPOT_DIAMETER: spot_diameter_um / microns_per_pixel, K.MICRONS_PER_PIXEL: microns_per_pixel}
    entry, shape = image_entry(
        image, scalefactors=scalefactors, load_fullres=load_fullres,
        metadata={"platform": "legacy_st", "spot_diameter_um": spot_diameter_um},
    )
    xy = selection[["pixel_x", "pixel_y"]].to_numpy(np.float64)
    check_inside(xy, shape, where=str(spots), ids=shared)

    var_names = table.columns.astype(str)
    adata = AnnData(
        X=x_counts,
        obs=pd.DataFrame(
            {"array_row": selection["y"].astype(int).to_numpy(), "array_col": selection["x"].astype(int).to_numpy()},
            index=shared,
        ),
        var=pd.DataFrame(index=var_names),
    )
    if not adata.var_names.is_unique:
        logger.warning("counts file %s has duplicated gene names; made unique with suffixes", counts)
        adata.var_names_make_unique()
    adata.obsm[K.SPATIAL_KEY] = xy
    adata.uns[K.SPATIAL_UNS] = {library_id: entry}
    return adata
