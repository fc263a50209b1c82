"""Damaged, foreign or incomplete SpatialData stores and Visium HD folders: named errors, no raw ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import DATA, import_spatial

import sthisto as st
from sthisto._errors import FileFormatError

sd = import_spatial("spatialdata")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("sdata") / "section.zarr"
    st.io.to_spatialdata(st.datasets.synthetic(n_spots=30, n_genes=10)).write(path)
    return path


def _copy(store: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy.zarr"
    shutil.copytree(store, out)
    return out


def test_a_store_path_is_read(store):
    adata = st.read.spatialdata(store)
    assert adata.n_obs == 30 and adata.uns["spatial"]["synthetic_image"]["metadata"]["spatialdata_path"]


def test_missing_file_and_foreign_stores(store, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^SpatialData zarr store \(written by sdata\.write\) not found: "):
        st.read.spatialdata(tmp_path / "nope.zarr")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"a\.txt is a file; pass the folder\.$"):
        st.read.spatialdata(tmp_path / "a.txt")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(FileFormatError, match=r"^cannot read the SpatialData zarr store .*empty\.zarr: .* Expected a "
                                              r"zarr store written by spatialdata \(sdata\.write\)\."):
        st.read.spatialdata(tmp_path / "empty.zarr")
    st.datasets.synthetic(n_spots=5, n_genes=3).write_zarr(tmp_path / "anndata.zarr")  # a zarr, not a SpatialData
    with pytest.raises(KeyError, match=r"the SpatialData object has no table; sthisto needs a table of raw counts"):
        st.read.spatialdata(tmp_path / "anndata.zarr")
    with pytest.raises(TypeError, match=r"^sdata must be a spatialdata\.SpatialData or the path of its zarr store, "
                                        r"got int\.$"):
        st.read.spatialdata(5)


def test_missing_elements(store, tmp_path):
    broken = _copy(store, tmp_path)
    shutil.rmtree(broken / "tables")
    with pytest.raises(FileFormatError, match=r"^cannot read the SpatialData zarr store .*copy\.zarr: .*tables"):
        st.read.spatialdata(broken)


def test_a_damaged_image_chunk_names_the_image_and_the_store(store, tmp_path):
    broken = _copy(store, tmp_path)
    chunks = [p for p in (broken / "images").rglob("*") if p.is_file() and p.name not in ("zarr.json", ".zarray",
                                                                                         ".zattrs", ".zgroup")]
    max(chunks, key=lambda p: p.stat().st_size).write_bytes(b"garbage")
    with pytest.raises(FileFormatError, match=r"^cannot read the pixels of image 'synthetic_image' of the SpatialData "
                                              r"store .*copy\.zarr: .* To fix: the stored image is damaged or "
                                              r"incomplete"):
        st.read.spatialdata(broken)


def test_table_obsm_is_copied_and_circles_checked(store):
    sdata = sd.read_zarr(store)
    table = sdata.tables["synthetic_counts"]
    table.obsm["extra"] = np.ones((table.n_obs, 2))
    adata = st.read.spatialdata(sdata)
    adata.obsm["extra"][0, 0] = 5
    assert table.obsm["extra"][0, 0] == 1  # the section shares nothing with sdata
    sdata.shapes["synthetic_spots"].loc[0, "radius"] = np.nan
    with pytest.raises(ValueError, match=r"^shapes 'synthetic_spots': 1 circle\(s\) have a radius that is not a "
                                         r"positive number \(e\.g\. nan at '0'\)\.$"):
        st.read.spatialdata(sdata)


@pytest.fixture
def hd_folder(tmp_path):
    out = tmp_path / "outs"
    shutil.copytree(DATA / "visium_hd_tiny", out)
    return out


def test_visium_hd_scale_factors(hd_folder):
    sf = hd_folder / "binned_outputs" / "square_008um" / "spatial" / "scalefactors_json.json"
    good = json.loads(sf.read_text())
    sf.write_text('{"microns_per_pixel": ')
    with pytest.raises(FileFormatError, match=r"^cannot read the Visium HD bin scale factors .*scalefactors_json\.json: "
                                              r".*\[json\.JSONDecodeError\]\. Expected a JSON object from Space Ranger"):
        st.read.visium_hd(hd_folder)
    sf.write_text("[1, 2]")
    with pytest.raises(FileFormatError, match=r"scalefactors_json\.json: holds a list\. Expected a JSON object"):
        st.read.visium_hd(hd_folder)
    sf.write_text(json.dumps({**good, "microns_per_pixel": "0.27"}))
    with pytest.raises(ValueError, match=r"^'microns_per_pixel' in .*scalefactors_json\.json must be a positive "
                                         r"finite number, got '0\.27'\.$"):
        st.read.visium_hd(hd_folder)
    with pytest.raises(ValueError, match=r"^bin_size must be one of \(2, 8, 16\), got '8'\."):
        st.read.visium_hd(hd_folder, bin_size="8")


def test_visium_hd_image_checked_before_spatialdata_io(hd_folder, tmp_path):
    (tmp_path / "he.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(FileFormatError, match=r"^cannot read the full-resolution image .*he\.tif: .* Expected the "
                                              r"microscope H&E image given to Space Ranger"):
        st.read.visium_hd(hd_folder, fullres_image=tmp_path / "he.tif")
    (tmp_path / "he.bmp").write_bytes(b"x")
    with pytest.raises(FileFormatError, match=r"he\.bmp: has the suffix '\.bmp'"):
        st.read.visium_hd(hd_folder, fullres_image=tmp_path / "he.bmp")
