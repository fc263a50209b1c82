"""Reader for 10x Genomics Visium (Space Ranger output) folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._image import VISIUM_SPOT_DIAMETER_UM, read_image
from sthisto._logging import logger

from ._common import check_inside, image_entry, integer_counts, require_file

_POSITION_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]


def _read_positions(spatial_dir: Path) -> pd.DataFrame:
    for name, header in (("tissue_positions.csv", 0), ("tissue_positions_list.csv", None)):
        path = spatial_dir / name
        if path.is_file():
            positions = pd.read_csv(path, header=header)
            if positions.shape[1] != len(_POSITION_COLUMNS):
                raise ValueError(f"{path} must have {len(_POSITION_COLUMNS)} columns, got {positions.shape[1]}")
            positions.columns = _POSITION_COLUMNS
            return positions.set_index("barcode")
    raise FileNotFoundError(f"no tissue_positions.csv or tissue_positions_list.csv in {spatial_dir}")


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
    ``scalefactors`` (``microns_per_pixel`` added from the 55 µm Visium spot diameter).
    """
    import scanpy as sc

    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"Visium folder not found: {path}")
    h5 = require_file(path / counts_file, "10x count matrix")
    spatial_dir = path / "spatial"
    sf_path = require_file(spatial_dir / "scalefactors_json.json", "scale factors")
    adata = sc.read_10x_h5(h5)
    adata.var_names_make_unique()
    adata.X = integer_counts(adata.X, where=str(h5))
    positions = _read_positions(spatial_dir)
    missing = adata.obs_names.difference(positions.index)
    if len(missing):
        raise ValueError(f"{len(missing)} barcode(s) of {h5.name} have no tissue position (e.g. {missing[0]})")
    positions = positions.loc[adata.obs_names]
    adata.obs[["in_tissue", "array_row", "array_col"]] = positions[["in_tissue", "array_row", "array_col"]]
    n_out = int((adata.obs["in_tissue"] == 0).sum())
    if n_out:
        logger.warning("dropping %d spot(s) outside the tissue (in_tissue == 0)", n_out)
        adata = adata[adata.obs["in_tissue"] == 1].copy()
        positions = positions.loc[adata.obs_names]
    xy = positions[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(np.float64)
    adata.obsm[K.SPATIAL_KEY] = xy

    with open(sf_path) as fh:
        scalefactors = json.load(fh)
    if not (scalefactors.get(K.SPOT_DIAMETER, 0) > 0 and scalefactors.get(K.SCALEF_HIRES, 0) > 0):
        raise ValueError(f"{sf_path} needs positive 'spot_diameter_fullres' and 'tissue_hires_scalef'.")
    scalefactors[K.MICRONS_PER_PIXEL] = VISIUM_SPOT_DIAMETER_UM / scalefactors[K.SPOT_DIAMETER]
    library_id = library_id or path.name
    if fullres_image is not None:
        entry, shape = image_entry(fullres_image, scalefactors=scalefactors, load_fullres=load_fullres,
                                   metadata={"platform": "visium"})
        entry["scalefactors"][K.SCALEF_HIRES] = scalefactors[K.SCALEF_HIRES]
        entry["images"][K.HIRES] = read_image(spatial_dir / "tissue_hires_image.png")
        check_inside(xy, shape, where=str(path), ids=adata.obs_names)
    else:
        entry = {"images": {}, "scalefactors": scalefactors, "metadata": {"platform": "visium"}}
        for res in (K.HIRES, "lowres"):
            img_path = spatial_dir / f"tissue_{res}_image.png"
            if img_path.is_file():
                entry["images"][res] = read_image(img_path)
        if K.HIRES in entry["images"]:
            hires_shape = entry["images"][K.HIRES].shape
            check_inside(xy * scalefactors[K.SCALEF_HIRES], hires_shape, where=f"{path} (hires image)",
                         ids=adata.obs_names)
    adata.uns[K.SPATIAL_UNS] = {library_id: entry}
    return adata
