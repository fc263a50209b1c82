"""Reader for 10x Genomics Visium (Space Ranger output) folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._errors import DEPENDENCY_ERRORS, InputError, file_format_error, reading
from sthisto._image import VISIUM_FULLRES_DIAMETER_UM, VISIUM_SPOT_PITCH_UM, read_image
from sthisto._logging import logger
from sthisto._validate import existing_file, existing_folder, number

from ._common import (
    check_inside,
    check_library_id,
    counts_csr,
    image_entry,
    numeric_columns,
    read_table,
)
from ._grid import check_not_transposed, fit_grid, grid_pixel_size

_POSITION_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]
_POSITIONS_FORMAT = "a Space Ranger tissue positions CSV with columns " + ", ".join(_POSITION_COLUMNS)
_SCALEFACTORS_FORMAT = ("a Space Ranger JSON object such as {\"spot_diameter_fullres\": 89.4, "
                        "\"tissue_hires_scalef\": 0.15, \"tissue_lowres_scalef\": 0.045}")
_SCALEFACTOR_KEYS = (K.SPOT_DIAMETER, K.SCALEF_HIRES, "tissue_lowres_scalef", "fiducial_diameter_fullres")
# Visium array indices: one column step is half the 100 µm pitch along a row, one row step
# the height of the hexagonal lattice
_STEP_UM = (VISIUM_SPOT_PITCH_UM / 2, VISIUM_SPOT_PITCH_UM * np.sqrt(3) / 2)
_MPP_AGREEMENT = 0.1  # relative difference allowed between the grid's and the scale factors' pixel size


def _read_positions(spatial_dir: Path) -> tuple[pd.DataFrame, Path]:
    for name, header in (("tissue_positions.csv", 0), ("tissue_positions_list.csv", None)):
        path = spatial_dir / name
        if path.is_file():
            positions = read_table(path, "tissue positions file", expected=_POSITIONS_FORMAT, header=header)
            if positions.shape[1] != len(_POSITION_COLUMNS):
                raise file_format_error(path, "tissue positions file", f"has {positions.shape[1]} columns",
                                        expected=_POSITIONS_FORMAT)
            positions.columns = _POSITION_COLUMNS
            positions["barcode"] = positions["barcode"].astype(str)
            positions = positions.set_index("barcode")
            if not positions.index.is_unique:
                dup = positions.index[positions.index.duplicated()][:3].tolist()
                raise file_format_error(path, "tissue positions file", f"has duplicated barcodes (e.g. {dup})")
            what = "tissue positions file"
            numeric_columns(positions, ["in_tissue", "array_row", "array_col"], path=path, what=what, integer=True)
            numeric_columns(positions, ["pxl_row_in_fullres", "pxl_col_in_fullres"], path=path, what=what)
            if not positions["in_tissue"].isin([0, 1]).all():
                raise file_format_error(path, what, "column 'in_tissue' holds values other than 0 and 1",
                                        expected=_POSITIONS_FORMAT)
            return positions, path
    raise FileNotFoundError(f"no tissue_positions.csv or tissue_positions_list.csv in {spatial_dir}")


def _read_scalefactors(path: Path) -> dict:
    with reading(path, "scale factors", expected=_SCALEFACTORS_FORMAT):
        scalefactors = json.loads(path.read_text())
    if not isinstance(scalefactors, dict):
        raise file_format_error(path, "scale factors", f"holds a JSON {type(scalefactors).__name__}, not an object",
                                expected=_SCALEFACTORS_FORMAT)
    for key in (K.SPOT_DIAMETER, K.SCALEF_HIRES):
        if key not in scalefactors:
            raise file_format_error(path, "scale factors", f"lacks {key!r}", expected=_SCALEFACTORS_FORMAT)
    for key in _SCALEFACTOR_KEYS:
        if key in scalefactors:
            scalefactors[key] = number(scalefactors[key], f"{path}: {key!r}", positive=True,
                                       fix="use the scalefactors_json.json that Space Ranger wrote")
    return scalefactors


def _pixel_size(positions: pd.DataFrame, scalefactors: dict, *, positions_path: Path, sf_path: Path) -> float:
    """Microns per pixel (10x: 65 µm / spot_diameter_fullres), checked against the spot grid."""
    mpp = VISIUM_FULLRES_DIAMETER_UM / scalefactors[K.SPOT_DIAMETER]
    fit = fit_grid(positions[["array_col", "array_row"]].to_numpy(np.float64),
                   positions[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(np.float64))
    if fit is None:
        return mpp
    grid_mpp = grid_pixel_size(fit, step_um=_STEP_UM, pitch_um=VISIUM_SPOT_PITCH_UM, where=str(positions_path),
                               names=("array_col", "array_row"),
                               pixel_names=("pxl_col_in_fullres", "pxl_row_in_fullres"))
    if abs(grid_mpp / mpp - 1) > _MPP_AGREEMENT:
        raise InputError(
            f"{sf_path}: spot_diameter_fullres = {scalefactors[K.SPOT_DIAMETER]:g} px implies {mpp:.3f} µm/px, "
            f"but the spot grid of {positions_path.name} (100 µm pitch) implies {grid_mpp:.3f} µm/px: the scale "
            "factors and the positions do not belong together. To fix: use the scalefactors_json.json that "
            "Space Ranger wrote with these tissue positions."
        )
    return mpp


def visium(
    path: str | os.PathLike,
    *,
    fullres_image: str | os.PathLike | None = None,
    library_id: str | None = None,
    counts_file: str = "filtered_feature_bc_matrix.h5",
    load_fullres: bool = False,
) -> AnnData:
    """Read a Space Ranger output folder, optionally attaching the full-resolution image.

    Parameters
    ----------
    path
        Folder with ``filtered_feature_bc_matrix.h5`` and ``spatial/`` (tissue positions,
        ``scalefactors_json.json``, ``tissue_hires_image.png``).
    fullres_image
        The full-resolution H&E image given to Space Ranger. Nuclei and image features
        need it; without it they fall back to the ``hires`` image with a warning.
    library_id
        Key in ``uns['spatial']``; defaults to the folder name.
    counts_file
        Name of the 10x HDF5 count matrix inside ``path``.
    load_fullres
        Keep the full-resolution image in memory instead of referencing its path.

    Returns
    -------
    AnnData with raw counts in ``X``, spots under tissue only, ``obsm['spatial']`` (x, y in
    full-resolution pixels) and ``uns['spatial'][library_id]`` with images and
    ``scalefactors`` (``microns_per_pixel`` added as 10x documents it: 65 µm /
    ``spot_diameter_fullres``).

    Before anything is built, the positions are checked against the array grid (a
    hexagonal lattice with 100 µm pitch: mixed-up columns, positions of another file), the
    pixel size of the scale factors against that of the grid, and the ``in_tissue`` flags
    against the tissue in the hires/lowres images (``pxl_row``/``pxl_col`` swapped); each
    failure raises a ``ValueError`` naming the file.
    """
    import scanpy as sc

    check_library_id(library_id)
    path = existing_folder(path, "Visium folder")
    h5 = existing_file(path / counts_file, "10x count matrix")
    spatial_dir = path / "spatial"
    sf_path = existing_file(spatial_dir / "scalefactors_json.json", "scale factors")
    scalefactors = _read_scalefactors(sf_path)
    positions, positions_path = _read_positions(spatial_dir)
    scalefactors[K.MICRONS_PER_PIXEL] = _pixel_size(positions, scalefactors, positions_path=positions_path,
                                                    sf_path=sf_path)
    # scanpy raises a bare Exception for an HDF5 file without the 10x datasets
    with reading(h5, "10x count matrix", expected="a Space Ranger feature-barcode matrix (HDF5)",
                 errors=(*DEPENDENCY_ERRORS, Exception)):
        adata = sc.read_10x_h5(h5)
    adata.var_names_make_unique()
    adata.X = counts_csr(adata.X, where=str(h5), labels=(adata.obs_names, adata.var_names))
    missing = adata.obs_names.difference(positions.index)
    if len(missing):
        raise InputError(f"{len(missing)} barcode(s) of {h5.name} have no tissue position in {positions_path} "
                         f"(e.g. {missing[0]}); do the files come from the same Space Ranger run?")

    images = {}
    for res in (K.HIRES, "lowres"):
        img_path = spatial_dir / f"tissue_{res}_image.png"
        if img_path.is_file():
            images[res] = read_image(img_path)
    everywhere = positions[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(np.float64)
    for res, img in images.items():
        scalef = scalefactors.get(f"tissue_{res}_scalef")
        if scalef is not None:
            check_not_transposed(img, everywhere * scalef, positions["in_tissue"].to_numpy() == 1,
                                 where=f"{positions_path} (checked against tissue_{res}_image.png)")

    library_id = library_id or path.name
    adata.obs[["in_tissue", "array_row", "array_col"]] = positions.loc[adata.obs_names,
                                                                      ["in_tissue", "array_row", "array_col"]]
    n_out = int((adata.obs["in_tissue"] == 0).sum())
    if n_out:
        logger.warning("dropping %d spot(s) outside the tissue (in_tissue == 0)", n_out)
        adata = adata[adata.obs["in_tissue"] == 1].copy()
    xy = positions.loc[adata.obs_names, ["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(np.float64)
    if fullres_image is not None:
        entry, shape = image_entry(fullres_image, scalefactors=scalefactors, load_fullres=load_fullres,
                                   metadata={"platform": "visium"})
        if K.HIRES in images:  # Space Ranger's hires image, with its own scale factor
            entry["images"][K.HIRES] = images[K.HIRES]
            entry["scalefactors"][K.SCALEF_HIRES] = scalefactors[K.SCALEF_HIRES]
        check_inside(xy, shape, where=str(path), ids=adata.obs_names)
    else:
        entry = {"images": images, "scalefactors": scalefactors, "metadata": {"platform": "visium"}}
        if K.HIRES in images:
            check_inside(xy * scalefactors[K.SCALEF_HIRES], images[K.HIRES].shape, where=f"{path} (hires image)",
                         ids=adata.obs_names)
    adata.obsm[K.SPATIAL_KEY] = xy
    adata.uns[K.SPATIAL_UNS] = {library_id: entry}
    return adata
