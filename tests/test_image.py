"""Direct tests of sthisto._image: reading images, pixel size, spot size, image choice."""

import logging

import numpy as np
import pytest
from anndata import AnnData
from PIL import Image

from sthisto import _image


def _adata(scalefactors, images=None, metadata=None):
    adata = AnnData(np.zeros((2, 1), np.float32))
    adata.uns["spatial"] = {"lib": {"images": images or {}, "scalefactors": scalefactors, "metadata": metadata or {}}}
    return adata


def test_read_image_formats(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(_image.read_image(tmp_path / "a.png"), rgb)
    np.save(tmp_path / "a.npy", rgb)
    mm = _image.read_image(tmp_path / "a.npy")
    assert isinstance(mm, np.memmap) and np.array_equal(mm, rgb)
    Image.fromarray(np.dstack([rgb, np.full((6, 7), 255, np.uint8)])).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(_image.read_image(tmp_path / "rgba.png"), rgb)  # alpha dropped
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    with pytest.raises(ValueError, match="grayscale"):
        _image.read_image(tmp_path / "grey.png")
    np.save(tmp_path / "f.npy", rgb.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        _image.read_image(tmp_path / "f.npy")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        _image.read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):  # the error names the file
        _image.read_image(tmp_path / "bad.png")


def test_pixel_and_spot_size(caplog):
    assert _image.microns_per_pixel(_adata({"microns_per_pixel": 0.5})) == 0.5
    with caplog.at_level(logging.WARNING, logger="sthisto"):  # derived from the spot size, with a warning
        derived = _image.microns_per_pixel(_adata({"spot_diameter_fullres": 110.0}))
    assert "microns_per_pixel" in caplog.text
    assert derived > 0 and _image.microns_per_pixel(_adata({"spot_diameter_fullres": 220.0})) == pytest.approx(derived / 2)
    with pytest.raises(KeyError, match="pixel size"):
        _image.microns_per_pixel(_adata({}))
    assert _image.spot_diameter_px(_adata({"spot_diameter_fullres": 90.0})) == 90.0
    with pytest.raises(KeyError, match="spot_diameter_fullres"):
        _image.spot_diameter_px(_adata({"microns_per_pixel": 0.5}))
    with pytest.raises(ValueError, match="positive"):
        _image.scalefactors(_adata({"microns_per_pixel": -1.0}))


def test_image_choice_and_lazy_path(tmp_path, caplog):
    full = np.zeros((20, 30, 3), np.uint8)
    hires = np.zeros((10, 15, 3), np.uint8)
    both = _adata({"tissue_hires_scalef": 0.5}, images={"fullres": full, "hires": hires})
    assert _image.image_and_scale(both)[1] == 1.0
    assert _image.image_and_scale(both, img_key="hires")[1] == 0.5
    only_hires = _adata({"tissue_hires_scalef": 0.5}, images={"hires": hires})
    with caplog.at_level(logging.WARNING, logger="sthisto"):
        img, scale = _image.image_and_scale(only_hires)
    assert img is hires and scale == 0.5 and "hires" in caplog.text
    with pytest.raises(KeyError, match="full-resolution"):
        _image.image_and_scale(only_hires, img_key="fullres")
    with pytest.raises(KeyError, match="tissue_hires_scalef"):
        _image.image_and_scale(_adata({}, images={"hires": hires}), img_key="hires")
    np.save(tmp_path / "full.npy", full)
    lazy = _adata({}, metadata={"fullres_path": str(tmp_path / "full.npy")})
    assert _image.fullres_image(lazy).shape == (20, 30, 3)
    assert _image.fullres_image(_adata({})) is None


def test_downsample():
    img = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    small, scalef = _image.downsample(img, max_dim=30)
    assert small.shape == (20, 30, 3) and scalef == 0.5
    same, one = _image.downsample(img, max_dim=100)
    assert one == 1.0 and np.array_equal(same, img) and same is not img
