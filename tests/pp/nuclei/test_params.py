"""WatershedParams: the one definition of the defaults, stored in uns and read back by the plot."""

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest

import sthisto as st
from sthisto.pl._nuclei_outlines import nuclei_region
from sthisto.pp import nuclei
from sthisto.pp.nuclei import WatershedParams


def test_defaults_validation_and_round_trip():
    p = WatershedParams()
    assert p.as_dict() == {"sigma_um": 1.0, "min_distance_um": 3.0, "min_area_um2": 10.0,
                           "max_area_um2": 500.0, "opening_um": 1.0, "peak_smoothing_um": 0.5}
    with pytest.raises(FrozenInstanceError):
        p.sigma_um = 2.0
    assert WatershedParams(max_area_um2=None).max_area_um2 == math.inf
    assert WatershedParams.from_params({"opening_um": 0.0, "method": "watershed"}) == WatershedParams(opening_um=0)
    assert WatershedParams.from_params(p.replace(min_area_um2=20).as_dict()).min_area_um2 == 20
    with pytest.raises(ValueError, match="sigma_um"):
        WatershedParams(sigma_um=-1)
    with pytest.raises(ValueError, match="max_area_um2"):
        WatershedParams(min_area_um2=50, max_area_um2=20)
    with pytest.raises(TypeError, match="min_areaa_um2"):
        p.replace(min_areaa_um2=3)


def test_every_field_is_stored_and_settable(synthetic_adata):
    st.pp.segment_nuclei(synthetic_adata, region="all")
    default = synthetic_adata.uns["sthisto_nuclei"]
    assert WatershedParams.from_params(default["params"]) == WatershedParams()
    st.pp.segment_nuclei(synthetic_adata, region="all", opening_um=0.0, peak_smoothing_um=0.0,
                         key_added="raw")
    raw = synthetic_adata.uns["raw"]
    assert raw["params"]["opening_um"] == 0.0 and raw["params"]["peak_smoothing_um"] == 0.0
    assert len(raw["nuclei"]) != len(default["nuclei"])  # the two options change the segmentation
    with pytest.raises(TypeError, match="unknown watershed parameters"):
        st.pp.segment_nuclei(synthetic_adata, opening=1.0)


def test_a_watershed_object_and_keywords_agree(synthetic_adata):
    img = synthetic_adata.uns["spatial"]["synthetic"]["images"]["fullres"]
    by_kw = nuclei.segment_image(img, microns_per_pixel=1.0, min_area_um2=40, tile_size=256)
    ws = nuclei.Watershed(WatershedParams(min_area_um2=40))
    by_obj = nuclei.segment_image(img, microns_per_pixel=1.0, method=ws, tile_size=256)
    np.testing.assert_array_equal(by_kw.to_numpy(), by_obj.to_numpy())
    assert by_obj.attrs["min_area_um2"] == 40 and by_obj.attrs["method"] == "watershed"


def test_the_plot_rebuilds_labels_with_the_stored_params(synthetic_adata, tmp_path):
    path = tmp_path / "labels.npy"
    st.pp.segment_nuclei(synthetic_adata, region="all", labels_path=path, min_area_um2=120, opening_um=2.0)
    stored = nuclei_region(synthetic_adata, "spot0012")
    del synthetic_adata.uns["sthisto_nuclei"]["params"]["labels_path"]
    rebuilt = nuclei_region(synthetic_adata, "spot0012")
    np.testing.assert_array_equal(rebuilt["labels"] > 0, stored["labels"] > 0)
    for key in ("min_area_um2", "opening_um"):  # with the defaults instead, the outlines differ
        del synthetic_adata.uns["sthisto_nuclei"]["params"][key]
    assert not np.array_equal(nuclei_region(synthetic_adata, "spot0012")["labels"] > 0, stored["labels"] > 0)
