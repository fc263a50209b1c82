import json

import numpy as np
import pytest
from PIL import Image

import sthisto as st


def test_reads_space_ranger_folder(visium_dir):
    adata = st.read.visium(visium_dir)
    assert adata.n_obs == 100 and adata.n_vars == 100
    entry = adata.uns["spatial"]["visium"]
    sf = entry["scalefactors"]
    assert sf["microns_per_pixel"] == pytest.approx(65.0 / sf["spot_diameter_fullres"])  # 10x: 65 µm
    assert entry["images"]["hires"].shape[2] == 3
    positions = np.loadtxt(visium_dir / "spatial" / "tissue_positions_list.csv", delimiter=",",
                           usecols=(4, 5), dtype=float)
    # obsm['spatial'] is (x, y) = (pxl_col, pxl_row) as in scanpy/squidpy
    assert set(map(tuple, adata.obsm["spatial"])) <= set(map(tuple, positions[:, ::-1]))
    assert np.all(adata.X.data == np.round(adata.X.data))


def test_attaches_fullres_image(visium_dir, tmp_path):
    adata0 = st.read.visium(visium_dir)
    xy = adata0.obsm["spatial"]
    img = np.full((int(xy[:, 1].max()) + 50, int(xy[:, 0].max()) + 50, 3), 200, np.uint8)
    path = tmp_path / "full.tif"
    import tifffile

    tifffile.imwrite(path, img)
    adata = st.read.visium(visium_dir, fullres_image=path)
    out, scale = st._image.image_and_scale(adata)
    assert scale == 1.0 and out.shape == img.shape


def test_fullres_too_small_is_rejected(visium_dir, tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match="outside"):
        st.read.visium(visium_dir, fullres_image=path)


def test_missing_pieces(visium_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="Visium folder"):
        st.read.visium(tmp_path / "nope")
    (visium_dir / "spatial" / "scalefactors_json.json").unlink()
    with pytest.raises(FileNotFoundError, match="scale factors"):
        st.read.visium(visium_dir)


def test_wrong_scale_factors(visium_dir):
    path = visium_dir / "spatial" / "scalefactors_json.json"
    sf = json.loads(path.read_text())
    sf["spot_diameter_fullres"] = -1
    path.write_text(json.dumps(sf))
    with pytest.raises(ValueError, match="spot_diameter_fullres"):
        st.read.visium(visium_dir)
