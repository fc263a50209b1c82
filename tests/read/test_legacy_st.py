import gzip

import numpy as np
import pandas as pd
import pytest

import sthisto as st
from sthisto.read._legacy_st import pixel_size_from_grid


def test_reads_counts_coordinates_and_image(synthetic_square, legacy_st_files):
    adata = st.read.legacy_st(*legacy_st_files, library_id="s1")
    assert adata.shape == synthetic_square.shape
    np.testing.assert_array_equal(adata.X.toarray(), synthetic_square.X.toarray())
    np.testing.assert_allclose(adata.obsm["spatial"], synthetic_square.obsm["spatial"])
    entry = adata.uns["spatial"]["s1"]
    sf = entry["scalefactors"]
    assert sf["microns_per_pixel"] == pytest.approx(2.0)  # derived from the 200 µm square grid
    assert sf["spot_diameter_fullres"] == pytest.approx(50.0)
    assert entry["images"]["hires"].shape[2] == 3
    assert entry["metadata"]["fullres_path"].endswith("image.png")
    # the lazily referenced full-resolution image is the original one
    img = st._image.fullres_image(adata)
    np.testing.assert_array_equal(img, synthetic_square.uns["spatial"]["synthetic"]["images"]["fullres"])


def test_load_fullres_keeps_array(legacy_st_files):
    adata = st.read.legacy_st(*legacy_st_files, microns_per_pixel=2.0, load_fullres=True)
    lib = next(iter(adata.uns["spatial"]))
    assert "fullres" in adata.uns["spatial"][lib]["images"]


def test_pixel_size_from_square_grid():
    x, y = np.meshgrid(np.arange(5), np.arange(4))
    spots = pd.DataFrame({"x": x.ravel(), "y": y.ravel(), "pixel_x": 100 + 290.0 * x.ravel(),
                          "pixel_y": 50 + 290.0 * y.ravel()})
    assert pixel_size_from_grid(spots) == pytest.approx(200.0 / 290.0)


def test_mismatched_spots_are_dropped_and_logged(legacy_st_files, caplog):
    counts, spots, image = legacy_st_files
    table = pd.read_csv(spots, sep="\t")
    table.iloc[:5].to_csv(spots, sep="\t", index=False)
    with caplog.at_level("WARNING", logger="sthisto"):
        adata = st.read.legacy_st(counts, spots, image, microns_per_pixel=2.0)
    assert adata.n_obs == 5
    assert "dropped" in caplog.text


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda c, s, i: c.unlink(), FileNotFoundError, "counts file"),
        (lambda c, s, i: i.unlink(), FileNotFoundError, "image file"),
        (lambda c, s, i: i.write_bytes(b"not an image"), ValueError, "cannot read the image file"),
    ],
)
def test_missing_or_unreadable_files(legacy_st_files, mutate, error, match):
    mutate(*legacy_st_files)
    with pytest.raises(error, match=match):
        st.read.legacy_st(*legacy_st_files, microns_per_pixel=2.0)


def _rewrite_counts(path, fn):
    table = pd.read_csv(path, sep="\t", index_col=0)
    table = fn(table)
    with gzip.open(path, "wt") as fh:
        table.to_csv(fh, sep="\t")


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda t: t.astype(float).mul(0.5), "not integers"),
        (lambda t: t.mul(-1), "negative"),
        (lambda t: t.astype(float).mask(t == t.iloc[0, 0]), "NaN"),
        (lambda t: t.set_axis([f"spot{i}" for i in range(len(t))]), "spot ids"),
    ],
)
def test_bad_counts(legacy_st_files, fn, match):
    _rewrite_counts(legacy_st_files[0], fn)
    with pytest.raises(ValueError, match=match):
        st.read.legacy_st(*legacy_st_files, microns_per_pixel=2.0)


def test_no_shared_spot_ids(legacy_st_files):
    counts, spots, image = legacy_st_files
    table = pd.read_csv(spots, sep="\t")
    table["x"] += 1000
    table.to_csv(spots, sep="\t", index=False)
    with pytest.raises(ValueError, match="no spot ids are shared"):
        st.read.legacy_st(counts, spots, image, microns_per_pixel=2.0)


def test_coordinates_outside_image(legacy_st_files):
    counts, spots, image = legacy_st_files
    table = pd.read_csv(spots, sep="\t")
    table.loc[0, "pixel_x"] = 1e6
    table.to_csv(spots, sep="\t", index=False)
    with pytest.raises(ValueError, match="outside"):
        st.read.legacy_st(counts, spots, image, microns_per_pixel=2.0)


def test_grayscale_image_rejected(legacy_st_files):
    from PIL import Image

    counts, spots, image = legacy_st_files
    Image.open(image).convert("L").save(image)
    with pytest.raises(ValueError, match="grayscale"):
        st.read.legacy_st(counts, spots, image, microns_per_pixel=2.0)


def test_spot_file_without_pixel_columns(legacy_st_files):
    counts, spots, image = legacy_st_files
    pd.read_csv(spots, sep="\t").drop(columns="pixel_x").to_csv(spots, sep="\t", index=False)
    with pytest.raises(ValueError, match="pixel_x"):
        st.read.legacy_st(counts, spots, image, microns_per_pixel=2.0)
