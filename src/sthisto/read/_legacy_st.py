"""Reader for the legacy Spatial Transcriptomics (ST) format used by HER2ST."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.utils import make_index_unique

from sthisto import _constants as K
from sthisto._errors import InputError, file_format_error, reading
from sthisto._logging import logger
from sthisto._validate import existing_file, number

from ._common import (
    check_inside,
    check_library_id,
    counts_csr,
    image_entry,
    numeric_columns,
    read_table,
)
from ._grid import GridFit, fit_grid, grid_pixel_size, grid_problem

ST_SPOT_PITCH_UM = 200.0  # centre-to-centre distance of grid neighbours on legacy ST arrays
_MPP_TOLERANCE = 1.25  # a given microns_per_pixel this far from the grid's is reported
_PIXELS = ("pixel_x", "pixel_y")
_COUNTS_FORMAT = ("a tab-separated spots × genes table (plain or gzip) with spot ids '{x}x{y}' as row "
                  "names and gene names in the header")
_SPOTS_FORMAT = "a tab-separated table with columns x, y, pixel_x, pixel_y (and optionally new_x, new_y, selected)"


def _gene_header(path: Path) -> list[str]:
    """Gene names as written in the header line (pandas renames duplicates to 'GENE.1')."""
    with reading(path, "counts file", expected=_COUNTS_FORMAT), open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        fh = gzip.open(raw) if gzipped else raw
        line = fh.readline().decode("utf-8")
    return [name.strip().strip('"') for name in line.rstrip("\r\n").split("\t")]


def _read_counts(path) -> pd.DataFrame:
    path = existing_file(path, "counts file")
    counts = read_table(path, "counts file", expected=_COUNTS_FORMAT, sep="\t", index_col=0)
    if counts.shape[1] == 0 or counts.shape[0] == 0:
        raise file_format_error(path, "counts file", "has no spots or no genes", expected=_COUNTS_FORMAT)
    header = _gene_header(path)  # with or without a name for the spot-id column
    genes = header[len(header) - counts.shape[1]:] if len(header) in (counts.shape[1], counts.shape[1] + 1) else None
    if genes is not None:
        counts.columns = genes
    bad = ~counts.index.astype(str).str.fullmatch(r"\d+x\d+")
    if bad.any():
        raise file_format_error(path, "counts file", f"row names must be spot ids '{{x}}x{{y}}', e.g. '10x21'; "
                                f"got {counts.index[bad][:3].tolist()}", expected=_COUNTS_FORMAT)
    if not counts.index.is_unique:
        dup = counts.index[counts.index.duplicated()].unique()[:3].tolist()
        raise file_format_error(path, "counts file", f"has duplicated spot ids (e.g. {dup})",
                                fix="keep one row per spot")
    for j, dtype in enumerate(counts.dtypes):
        if not pd.api.types.is_numeric_dtype(dtype):
            column = counts.iloc[:, j]
            i = int(np.argmax(pd.to_numeric(column, errors="coerce").isna().to_numpy() & column.notna().to_numpy()))
            raise file_format_error(path, "counts file", f"gene column {counts.columns[j]!r} holds text (e.g. "
                                    f"{column.iloc[i]!r} at spot {counts.index[i]!r})", expected=_COUNTS_FORMAT)
    counts.index = counts.index.astype(str)
    return counts


def _read_spots(path) -> pd.DataFrame:
    path = existing_file(path, "spot selection file")
    spots = read_table(path, "spot selection file", expected=_SPOTS_FORMAT, sep="\t")
    missing = {"x", "y", "pixel_x", "pixel_y"} - set(spots.columns)
    if missing:
        raise file_format_error(path, "spot selection file", f"lacks columns {sorted(missing)}",
                                expected=_SPOTS_FORMAT)
    if "selected" in spots.columns:
        numeric_columns(spots, ["selected"], path=path, what="spot selection file", integer=True)
        spots = spots[spots["selected"].astype(int) == 1]
    if spots.empty:
        raise file_format_error(path, "spot selection file", "has no (selected) spots", expected=_SPOTS_FORMAT)
    numeric_columns(spots, ["x", "y"], path=path, what="spot selection file", integer=True)
    numeric_columns(spots, [c for c in ("pixel_x", "pixel_y", "new_x", "new_y") if c in spots],
                    path=path, what="spot selection file")
    spots.index = spots["x"].astype(int).astype(str) + "x" + spots["y"].astype(int).astype(str)
    if not spots.index.is_unique:
        dup = spots.index[spots.index.duplicated()].unique()[:3].tolist()
        raise file_format_error(path, "spot selection file", f"has duplicated (x, y) spot ids (e.g. {dup})",
                                fix="keep one row per spot")
    return spots


def _grid_fit(spots: pd.DataFrame, where: str) -> tuple[GridFit | None, tuple[str, str]]:
    """Fit pixel positions to the array grid (``None`` for spots on one line); raise if mirrored."""
    names = ("new_x", "new_y") if {"new_x", "new_y"} <= set(spots.columns) else ("x", "y")
    fit = fit_grid(spots[list(names)].to_numpy(np.float64), spots[list(_PIXELS)].to_numpy(np.float64))
    if fit is not None and fit.reflected:
        raise InputError(
            f"{where}: pixel_x follows the array {names[1]} and pixel_y follows {names[0]} (the grid is "
            f"mirrored): the x/y (or pixel_x/pixel_y) columns look swapped. To fix: exchange them, so that "
            "pixel_x grows with x and pixel_y with y as the ST spot detector writes them."
        )
    return fit, names


def _grid_pixel_size(fit: GridFit | None, names: tuple[str, str], pitch_um: float, where: str) -> float:
    if fit is None:
        raise InputError(f"{where}: cannot derive the pixel size from spots on fewer than two grid rows and "
                         "columns; pass microns_per_pixel=.")
    return grid_pixel_size(fit, step_um=(pitch_um, pitch_um), pitch_um=pitch_um, where=where, names=names,
                           pixel_names=_PIXELS)


def pixel_size_from_grid(spots: pd.DataFrame, pitch_um: float = ST_SPOT_PITCH_UM, *,
                         where: str = "spot table") -> float:
    """Microns per pixel from a least-squares fit of pixel vs array coordinates.

    Raises when the positions do not follow a square grid (swapped or mixed-up columns),
    or span fewer than two grid rows and columns.
    """
    return _grid_pixel_size(*_grid_fit(spots, where), pitch_um, where)


def _cross_check(microns_per_pixel: float, fit: GridFit | None, names: tuple[str, str], where: str) -> None:
    """Warn when a given pixel size disagrees with that of a square spot grid."""
    step = (ST_SPOT_PITCH_UM, ST_SPOT_PITCH_UM)
    if fit is None or grid_problem(fit, step_um=step, pitch_um=ST_SPOT_PITCH_UM, names=names, pixel_names=_PIXELS):
        return  # no square grid to compare with
    grid_mpp = grid_pixel_size(fit, step_um=step, pitch_um=ST_SPOT_PITCH_UM, where=where, names=names,
                               pixel_names=_PIXELS)
    if not 1 / _MPP_TOLERANCE <= microns_per_pixel / grid_mpp <= _MPP_TOLERANCE:
        logger.warning("microns_per_pixel=%g, but the spot grid of %s (200 µm pitch) implies %.3g µm/px; "
                       "check the value", microns_per_pixel, where, grid_mpp)


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
    spot_diameter_um = number(spot_diameter_um, "spot_diameter_um", positive=True)
    if microns_per_pixel is not None:
        microns_per_pixel = number(microns_per_pixel, "microns_per_pixel", positive=True,
                                   fix="pass the pixel size in µm, or None to derive it from the spot grid")
    check_library_id(library_id)
    table = _read_counts(counts)
    selection = _read_spots(spots)
    shared = table.index.intersection(selection.index, sort=False)
    if len(shared) == 0:
        raise InputError(
            f"no spot ids are shared by {counts} and {spots} (e.g. counts {table.index[:2].tolist()}, "
            f"spots {selection.index[:2].tolist()}); do the files belong to the same section?"
        )
    fit, names = _grid_fit(selection, str(spots))
    if microns_per_pixel is None:
        microns_per_pixel = _grid_pixel_size(fit, names, ST_SPOT_PITCH_UM, str(spots))
    else:
        _cross_check(microns_per_pixel, fit, names, str(spots))
    dropped_counts, dropped_spots = len(table) - len(shared), len(selection) - len(shared)
    if dropped_counts or dropped_spots:
        logger.warning(
            "dropped %d spot(s) only in the counts and %d only in the spot file", dropped_counts, dropped_spots
        )
    table, selection = table.loc[shared], selection.loc[shared]
    x_counts = counts_csr(table.to_numpy(), where=str(counts), labels=(shared, table.columns))
    library_id = library_id or os.path.basename(str(counts)).split(".")[0]
    scalefactors = {K.SPOT_DIAMETER: spot_diameter_um / microns_per_pixel, K.MICRONS_PER_PIXEL: microns_per_pixel}
    entry, shape = image_entry(
        image, scalefactors=scalefactors, load_fullres=load_fullres,
        metadata={"platform": "legacy_st", "spot_diameter_um": spot_diameter_um},
    )
    xy = selection[["pixel_x", "pixel_y"]].to_numpy(np.float64)
    check_inside(xy, shape, where=str(spots), ids=shared)

    var_names = pd.Index(table.columns.astype(str))
    if not var_names.is_unique:
        dup = var_names[var_names.duplicated()].unique()
        logger.warning("counts file %s has %d duplicated gene name(s) (e.g. %s); made unique with suffixes "
                       "'-1', '-2', ... as anndata's var_names_make_unique does", counts, len(dup), dup[:3].tolist())
        var_names = make_index_unique(var_names)
    adata = AnnData(
        X=x_counts,
        obs=pd.DataFrame(
            {"array_row": selection["y"].astype(int).to_numpy(), "array_col": selection["x"].astype(int).to_numpy()},
            index=shared,
        ),
        var=pd.DataFrame(index=var_names),
    )
    adata.obsm[K.SPATIAL_KEY] = xy
    adata.uns[K.SPATIAL_UNS] = {library_id: entry}
    return adata
