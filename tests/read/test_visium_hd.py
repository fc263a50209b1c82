"""sthisto.read.visium_hd on the faithful tiny Space Ranger folder (scripts/build_visium_hd_fixture.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import import_spatial

import sthisto as st

import_spatial("spatialdata_io")
HD = Path(__file__).parents[1] / "data" / "visium_hd_tiny"


@pytest.mark.parametrize("bin_size", [2, 8, 16])
def test_bins_are_read_with_positions_counts_and_pixel_size(bin_size):
    import scanpy as sc

    adata = st.read.visium_hd(HD, bin_size=bin_size)
    name = f"square_{bin_size:03d}um"
    folder = HD / "binned_outputs" / name
    ref = sc.read_10x_h5(folder / "filtered_feature_bc_matrix.h5")
    assert list(adata.obs_names) == list(ref.obs_names)
    np.testing.assert_array_equal(adata.X.toarray(), ref.X.toarray())
    pos = pd.read_parquet(folder / "spatial" / "tissue_positions.parquet").set_index("barcode").loc[adata.obs_names]
    np.testing.assert_allclose(adata.obsm["spatial"], pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(),
                               atol=1e-6)
    np.testing.assert_array_equal(adata.obs["array_row"].to_numpy(), pos["array_row"].to_numpy())
    sf = json.loads((folder / "spatial" / "scalefactors_json.json").read_text())
    entry = adata.uns["spatial"][name]
    assert entry["scalefactors"]["microns_per_pixel"] == pytest.approx(sf["microns_per_pixel"])
    assert entry["scalefactors"]["spot_diameter_fullres"] == pytest.approx(sf["spot_diameter_fullres"], rel=1e-6)
    assert entry["metadata"]["spot_shape"] == "square"
    import dask.array as da

    assert isinstance(entry["images"]["fullres"], da.Array)
    # opened through tifffile's zarr store (tile/strip reads), not as one whole-page dask_image chunk
    assert any("zarr" in str(name) for name in entry["images"]["fullres"].dask.layers)


def test_bins_of_every_size_hold_the_same_counts():
    totals = {b: st.read.visium_hd(HD, bin_size=b).X.sum() for b in (2, 8, 16)}
    assert totals[2] == totals[8] == totals[16] > 0


def test_missing_bin_size_and_image_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="bin_size must be one of"):
        st.read.visium_hd(HD, bin_size=4)
    copy = tmp_path / "outs"
    shutil.copytree(HD, copy, ignore=shutil.ignore_patterns("square_016um", "microscope_image"))
    with pytest.raises(FileNotFoundError, match="bin sizes in .*square_002um.*square_008um"):
        st.read.visium_hd(copy, bin_size=16)
    with pytest.raises(FileNotFoundError, match="pass fullres_image="):
        st.read.visium_hd(copy, bin_size=8)
    adata = st.read.visium_hd(copy, bin_size=8, fullres_image=HD / "microscope_image" / "tissue_image.tif")
    assert adata.n_obs > 1000


def test_tiff_is_read_tile_by_tile(tmp_path):
    import tifffile

    img = np.random.default_rng(0).integers(0, 255, size=(1000, 700, 3), dtype=np.uint8)
    path = tmp_path / "he.tif"
    tifffile.imwrite(path, img, tile=(256, 256), compression="zlib", photometric="rgb")
    (level,) = st._image.lazy_tiff(path, chunk_px=256)
    assert level.numblocks[:2] == (4, 3)
    np.testing.assert_array_equal(np.asarray(level[300:420, 610:700]), img[300:420, 610:700])
