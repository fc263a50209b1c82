"""sthisto.read.spatialdata: coordinates through transformations, lazy pyramid, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import import_spatial

import sthisto as st

sd = import_spatial("spatialdata")
from spatialdata.models import Image2DModel, Labels2DModel, ShapesModel, TableModel  # noqa: E402
from spatialdata.transformations import Affine, Identity, Scale, Sequence, Translation  # noqa: E402


def _section_sdata(adata, **kwargs):
    return st.io.to_spatialdata(adata, **kwargs)


def test_round_trip_of_a_section_built_from_anndata(synthetic_adata):
    sdata = _section_sdata(synthetic_adata)
    assert set(sdata.images) == {"synthetic_image"} and set(sdata.shapes) == {"synthetic_spots"}
    back = st.read.spatialdata(sdata)
    np.testing.assert_allclose(back.obsm["spatial"], synthetic_adata.obsm["spatial"])
    np.testing.assert_array_equal(back.X.toarray(), synthetic_adata.X.toarray())
    assert list(back.obs_names) == list(synthetic_adata.obs_names)
    sf, ref = back.uns["spatial"]["synthetic_image"]["scalefactors"], synthetic_adata.uns["spatial"]["synthetic"]["scalefactors"]
    assert sf["spot_diameter_fullres"] == pytest.approx(ref["spot_diameter_fullres"])
    assert sf["microns_per_pixel"] == pytest.approx(ref["microns_per_pixel"])
    images = back.uns["spatial"]["synthetic_image"]["images"]
    import dask.array as da

    assert isinstance(images["fullres"], da.Array)  # lazy, never materialised by the reader
    np.testing.assert_array_equal(np.asarray(images["fullres"]),
                                  synthetic_adata.uns["spatial"]["synthetic"]["images"]["fullres"])
    assert isinstance(images["hires"], np.ndarray) and max(images["hires"].shape[:2]) <= 2000
    assert back.uns["spatial"]["synthetic_image"]["metadata"]["spot_shape"] == "circle"


def _rgb(h=300, w=400, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, size=(3, h, w), dtype=np.uint8)


def _sdata(image_t, shapes_t, *, xy, radius=5.0, image=None, region="spots"):
    image = Image2DModel.parse(_rgb() if image is None else image, dims=("c", "y", "x"),
                               transformations={"global": image_t}, scale_factors=[2, 2])
    shapes = ShapesModel.parse(np.asarray(xy, float), geometry=0, radius=np.full(len(xy), radius),
                               index=np.arange(len(xy)), transformations={"global": shapes_t})
    table = TableModel.parse(_counts_table(len(xy)), region=region, region_key="region", instance_key="cell")
    return sd.SpatialData(images={"he": image}, shapes={"spots": shapes}, tables={"table": table})


def _counts_table(n):
    import anndata as ad

    rng = np.random.default_rng(1)
    t = ad.AnnData(rng.poisson(3, size=(n, 4)).astype(np.float32),
                   var=pd.DataFrame(index=[f"g{i}" for i in range(4)]))
    t.obs_names = [f"s{i}" for i in range(n)]
    t.obs["region"] = pd.Categorical(["spots"] * n)
    t.obs["cell"] = np.arange(n)[::-1]  # instances in reverse order: rows must be matched by id
    return t


def test_coordinates_go_through_both_transformations():
    xy = np.array([[10.0, 20.0], [30.0, 5.0], [50.0, 40.0]])
    theta = np.deg2rad(30)
    rot = np.array([[np.cos(theta), -np.sin(theta), 100.0], [np.sin(theta), np.cos(theta), 50.0], [0, 0, 1]])
    shapes_t = Affine(rot @ np.diag([2.0, 2.0, 1.0]), input_axes=("x", "y"), output_axes=("x", "y"))
    image_t = Sequence([Scale([0.5, 0.5], axes=("x", "y")), Translation([10.0, 20.0], axes=("x", "y"))])
    sdata = _sdata(image_t, shapes_t, xy=xy)
    adata = st.read.spatialdata(sdata, microns_per_pixel=0.5)
    # by hand: shapes -> global -> image pixels
    g = (rot[:2, :2] @ (2 * xy.T)).T + rot[:2, 2]
    expected = (g - [10.0, 20.0]) / 0.5
    order = sdata.tables["table"].obs["cell"].to_numpy()  # row i is instance order[i]
    np.testing.assert_allclose(adata.obsm["spatial"], expected[order], atol=1e-9)
    sf = adata.uns["spatial"]["he"]["scalefactors"]
    assert sf["spot_diameter_fullres"] == pytest.approx(2 * 5.0 * 2 / 0.5)  # radius 5, ×2, image ×0.5
    assert sf["tissue_fullres_1_scalef"] == 0.5 and sf["tissue_fullres_2_scalef"] == 0.25


def test_pixel_size_from_a_micron_coordinate_system():
    xy = np.array([[10.0, 20.0], [30.0, 5.0], [50.0, 40.0]])
    image_t = Scale([0.25, 0.25], axes=("x", "y"))  # image pixels -> µm
    sdata = _sdata(image_t, Identity(), xy=xy)
    adata = st.read.spatialdata(sdata, microns_per_unit=1.0)
    assert adata.uns["spatial"]["he"]["scalefactors"]["microns_per_pixel"] == pytest.approx(0.25)
    adata = st.read.spatialdata(sdata, spot_diameter_um=5.0)  # radius 5 µm -> 40 px
    assert adata.uns["spatial"]["he"]["scalefactors"]["microns_per_pixel"] == pytest.approx(5.0 / 40)
    with pytest.raises(ValueError, match="cannot tell the pixel size"):
        st.read.spatialdata(sdata)


def test_clear_errors_for_missing_elements_and_wrong_annotation():
    xy = np.array([[10.0, 20.0], [30.0, 5.0]])
    sdata = _sdata(Identity(), Identity(), xy=xy)
    with pytest.raises(KeyError, match="table 'nope'"):
        st.read.spatialdata(sdata, table_key="nope", microns_per_pixel=1)
    with pytest.raises(KeyError, match="image 'nope'"):
        st.read.spatialdata(sdata, image_key="nope", microns_per_pixel=1)
    sdata["other"] = ShapesModel.parse(xy, geometry=0, radius=np.ones(2), transformations={"global": Identity()})
    with pytest.raises(ValueError, match="annotates \\['spots'\\], not 'other'"):
        st.read.spatialdata(sdata, shapes_key="other", microns_per_pixel=1)
    labels = Labels2DModel.parse(np.zeros((300, 400), np.int32), dims=("y", "x"), transformations={"global": Identity()})
    t = _counts_table(2)
    t.obs["region"] = pd.Categorical(["cells"] * 2)
    s2 = sd.SpatialData(images={"he": sdata.images["he"]}, labels={"cells": labels},
                        tables={"table": TableModel.parse(t, region="cells", region_key="region", instance_key="cell")})
    with pytest.raises(ValueError, match="labels element 'cells'"):
        st.read.spatialdata(s2, microns_per_pixel=1)


def test_non_affine_and_anisotropic_transformations_are_refused(monkeypatch):
    xy = np.array([[10.0, 20.0], [30.0, 5.0]])
    sdata = _sdata(Scale([1.0, 2.0], axes=("x", "y")), Identity(), xy=xy)
    with pytest.raises(ValueError, match="scales x and y differently"):
        st.read.spatialdata(sdata, microns_per_pixel=1)

    import spatialdata.transformations as tr

    class Projective:  # a transformation spatialdata may add one day: x, y not affine
        def to_affine_matrix(self, input_axes, output_axes):
            return np.array([[1, 0, 0], [0, 1, 0], [1e-3, 0, 1]])

    sdata = _sdata(Identity(), Identity(), xy=xy)
    real = tr.get_transformation
    monkeypatch.setattr(tr, "get_transformation", lambda e, to_coordinate_system=None, get_all=False: (
        real(e, get_all=True) if get_all else Projective()))
    with pytest.raises(ValueError, match="is not affine"):
        st.read.spatialdata(sdata, microns_per_pixel=1)


@pytest.mark.parametrize("image", [np.zeros((5, 300, 400), np.uint8), np.zeros((1, 300, 400), np.uint8),
                                   np.zeros((3, 300, 400), np.uint16)])
def test_image_must_be_rgb_uint8(image):
    sdata = _sdata(Identity(), Identity(), xy=np.array([[10.0, 20.0], [30.0, 5.0]]), image=image)
    with pytest.raises(ValueError, match="RGB uint8"):
        st.read.spatialdata(sdata, microns_per_pixel=1)


def test_table_rows_for_other_regions_are_left_out():
    xy = np.array([[10.0, 20.0], [30.0, 5.0], [50.0, 40.0]])
    sdata = _sdata(Identity(), Identity(), xy=xy)
    t = sdata.tables["table"]
    t.obs["region"] = pd.Categorical(["spots", "elsewhere", "spots"])
    t.uns["spatialdata_attrs"]["region"] = ["spots", "elsewhere"]
    adata = st.read.spatialdata(sdata, shapes_key="spots", microns_per_pixel=1)
    assert list(adata.obs_names) == ["s0", "s2"]


def test_patches_read_the_coarsest_adequate_level_only(synthetic_adata, monkeypatch):
    sdata = _section_sdata(synthetic_adata)
    adata = st.read.spatialdata(sdata)
    images = adata.uns["spatial"]["synthetic_image"]["images"]
    assert "fullres_1" in images
    reads = {"fullres": 0, "fullres_1": 0}

    class Counting:
        def __init__(self, arr, key):
            self.arr, self.key, self.shape, self.dtype, self.ndim = arr, key, arr.shape, arr.dtype, arr.ndim

        def __getitem__(self, item):
            reads[self.key] += 1
            return self.arr[item]

    for key in reads:
        images[key] = Counting(images[key], key)
    diameter = adata.uns["spatial"]["synthetic_image"]["scalefactors"]["spot_diameter_fullres"]
    batches = list(st.pp.patches(adata, patch_px=int(diameter * 0.5) - 1))  # level 1 (scale 0.5) suffices
    assert reads["fullres"] == 0 and reads["fullres_1"] > 0
    assert sum(len(b.index) for b in batches) == adata.n_obs
    reads.update(fullres=0, fullres_1=0)
    list(st.pp.patches(adata, patch_px=int(diameter) + 1))  # finer than level 1: full resolution
    assert reads["fullres"] > 0 and reads["fullres_1"] == 0


def test_a_spatialdata_io_visium_section_in_the_hires_frame():
    """spatialdata-io's Visium reader (RGBA hires PNG, Scale transformations) on the real 100-spot folder."""
    sdio = import_spatial("spatialdata_io")
    folder = Path(__file__).parents[1] / "data" / "visium_100spots"
    sdata = sdio.visium(folder, dataset_id="v100")
    ref = st.read.visium(folder)
    sf = ref.uns["spatial"]["visium_100spots"]["scalefactors"]
    # the circles are Space Ranger's spot_diameter_fullres wide: the same µm as read.visium assumes
    adata = st.read.spatialdata(sdata, spot_diameter_um=sf["microns_per_pixel"] * sf["spot_diameter_fullres"])
    entry = adata.uns["spatial"]["v100_hires_image"]  # RGBA hires PNG: alpha dropped
    assert entry["metadata"]["coordinate_system"] == "v100_downscaled_hires"  # where the image is untransformed
    ref = ref[adata.obs_names]
    np.testing.assert_allclose(adata.obsm["spatial"], ref.obsm["spatial"] * sf["tissue_hires_scalef"], rtol=1e-9)
    assert entry["scalefactors"]["spot_diameter_fullres"] == pytest.approx(
        sf["spot_diameter_fullres"] * sf["tissue_hires_scalef"])
    assert entry["scalefactors"]["microns_per_pixel"] == pytest.approx(
        sf["microns_per_pixel"] / sf["tissue_hires_scalef"])
    assert np.asarray(entry["images"]["fullres"]).shape[2] == 3


def test_counts_must_be_raw_or_named_by_layer():
    xy = np.array([[10.0, 20.0], [30.0, 5.0]])
    sdata = _sdata(Identity(), Identity(), xy=xy)
    t = sdata.tables["table"]
    t.layers["counts"] = t.X.copy()
    t.X = np.log1p(t.X)
    with pytest.raises(ValueError, match="pass layer="):
        st.read.spatialdata(sdata, microns_per_pixel=1)
    with pytest.raises(KeyError, match="no layer 'raw'"):
        st.read.spatialdata(sdata, microns_per_pixel=1, layer="raw")
    adata = st.read.spatialdata(sdata, microns_per_pixel=1, layer="counts")
    np.testing.assert_array_equal(adata.X.toarray(), t.layers["counts"])
