"""Bad input to segment_nuclei / nuclei_features: checked first, named, nothing half-written."""

from dataclasses import dataclass

import numpy as np
import pytest

import sthisto as st
from sthisto._errors import InputError
from sthisto.pp import nuclei
from tests._unchanged import assert_unchanged


@pytest.fixture
def small(synthetic_adata):
    return synthetic_adata[:30].copy()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile_size": 0}, r"tile_size must be an integer >= 16, got 0\. To fix: give the tile side in pixels"),
        ({"tile_size": 2.5}, r"tile_size must be an integer >= 16, got 2\.5\."),
        ({"tile_size": 64, "overlap": 64}, r"overlap must be an integer between 0 and 63, got 64\. To fix: the "
                                           r"context read around a tile must be smaller than the tile"),
        ({"overlap": -1}, r"overlap must be an integer between 0 and 2047, got -1\."),
        ({"threshold": float("nan")}, r"threshold must be a finite number >= 0, got nan\. To fix: give a "
                                      r"hematoxylin optical density"),
        ({"threshold": -0.1}, r"threshold must be a finite number >= 0, got -0\.1\."),
        ({"sigma_um": float("inf")}, r"WatershedParams\.sigma_um must be a finite number between 0 and 25\.0, "
                                     r"got inf\."),
        ({"opening_um": 1e6}, r"WatershedParams\.opening_um must be a finite number between 0 and 25\.0"),
        ({"min_area_um2": float("inf")}, r"WatershedParams\.min_area_um2 must be a finite number >= 0, got inf\."),
        ({"region": "tissue"}, r"region must be one of \('spots', 'all'\), got 'tissue'\."),
        ({"backend": "mpi"}, r"backend must be one of \('threads', 'processes'\), got 'mpi'\."),
        ({"n_jobs": 0}, r"n_jobs must be -1 \(all cores\) or a positive integer, got 0\."),
        ({"key_added": ""}, r"key_added must be a non-empty string \(an AnnData key\), got ''\."),
    ],
)
def test_arguments_are_checked_before_any_work(small, kwargs, message):
    before = small.copy()
    with pytest.raises(InputError, match=f"^{message}"):
        st.pp.segment_nuclei(small, **kwargs)
    assert_unchanged(small, before)


def test_label_images_of_the_wrong_kind(small):
    shape = small.uns["spatial"]["synthetic"]["images"]["fullres"].shape[:2]
    with pytest.raises(InputError, match=r"^the label image \(method=\) holds labels of dtype float32; a label "
                                         r"image holds integers .* To fix: convert it, e\.g\. "
                                         r"skimage\.measure\.label\(mask\)"):
        st.pp.segment_nuclei(small, method=np.zeros(shape, np.float32))
    with pytest.raises(InputError, match=r"^the label image \(method=\) has shape \(979, 1250, 3\) but the H&E "
                                         r"image is \(979, 1250\)"):
        st.pp.segment_nuclei(small, method=np.zeros((*shape, 3), np.int32))


def _nan_labels(tile):
    return np.full(tile.shape[:2], np.nan)


@dataclass(frozen=True)
class Negative(nuclei.Segmenter):
    name: str = "negative_ids"

    def __call__(self, tile):
        return -np.ones(tile.shape[:2], np.int32)


def test_a_segmenter_returning_garbage_is_named(small):
    before = small.copy()
    with pytest.raises(InputError, match=r"^the segmentation callable 'callable:_nan_labels' returned an image that "
                                         r"holds labels of dtype float64"):
        st.pp.segment_nuclei(small, method=_nan_labels, tile_size=256)
    with pytest.raises(InputError, match=r"^the segmentation callable 'callable:<lambda>' returned NoneType of shape "
                                         r"\(\) for a tile of shape \(320, 320\); it must return an \(H, W\) label"):
        st.pp.segment_nuclei(small, method=lambda t: None, tile_size=256, region="all")
    with pytest.raises(InputError, match=r"^the segmenter 'negative_ids' returned negative labels \(min -1\); 0 is "
                                         r"background"):
        st.pp.segment_nuclei(small, method=Negative(), tile_size=256)
    assert_unchanged(small, before)


def test_labels_path_is_checked_first_and_never_left_half_written(small, tmp_path):
    before = small.copy()
    with pytest.raises(FileNotFoundError, match=r"the folder of labels_path does not exist: .*missing"):
        st.pp.segment_nuclei(small, labels_path=tmp_path / "missing" / "labels.npy")
    with pytest.raises(IsADirectoryError, match=r"labels_path .* is a folder; give a \.npy file path"):
        (tmp_path / "dir.npy").mkdir()
        st.pp.segment_nuclei(small, labels_path=tmp_path / "dir.npy")
    calls = []

    def fails_on_the_second_tile(tile):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the deep segmenter crashed")
        return np.zeros(tile.shape[:2], np.int32)

    target = tmp_path / "labels.npy"
    with pytest.raises(RuntimeError, match="crashed"):
        st.pp.segment_nuclei(small, method=fails_on_the_second_tile, tile_size=256, region="all", labels_path=target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npy"]  # no labels.npy, no partial file
    assert_unchanged(small, before)
    st.pp.segment_nuclei(small, tile_size=256, labels_path=target)
    assert target.is_file() and small.uns["sthisto_nuclei"]["params"]["labels_path"] == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npy", "labels.npy"]


def test_duplicated_obs_names(small):
    small.obs_names = ["s"] * small.n_obs
    with pytest.raises(InputError, match=r"^adata\.obs_names are not unique \(e\.g\. \['s'\]\); spots are named by "
                                         r"them\. To fix: call adata\.obs_names_make_unique\(\)\.$"):
        st.pp.segment_nuclei(small)


@pytest.fixture
def segmented(small):
    st.pp.segment_nuclei(small, tile_size=256)
    return small


def test_nuclei_features_checks_the_stored_table(segmented):
    entry = segmented.uns["sthisto_nuclei"]
    table = entry["nuclei"]
    table.loc[table.index[0], "x"] = np.nan
    before = segmented.copy()
    with pytest.raises(InputError, match=r"^adata\.uns\['sthisto_nuclei'\]\['nuclei'\]\['x'\] holds 1 NaN, infinite "
                                         r"or non-numeric centroid\(s\); nuclei need finite positions\."):
        st.pp.nuclei_features(segmented)
    assert_unchanged(segmented, before)
    entry["nuclei"] = table.iloc[:0]
    with pytest.raises(InputError, match=r"holds no nucleus: the segmentation found none\. To fix: check the image "
                                         r"and `sthisto\.pp\.segment_nuclei`'s threshold= / min_area_um2=\.$"):
        st.pp.nuclei_features(segmented)
    entry["nuclei"] = table.drop(columns="orientation")
    with pytest.raises(InputError, match=r"lacks the columns \['orientation'\]: re-run `sthisto\.pp\.segment_nuclei`"):
        st.pp.nuclei_features(segmented)
    entry["params"]["microns_per_pixel"] = "abc"
    entry["nuclei"] = table.dropna()
    with pytest.raises(InputError, match=r"^adata\.uns\['sthisto_nuclei'\]\['params'\]\['microns_per_pixel'\] must be "
                                         r"a positive finite number, got 'abc'\.$"):
        st.pp.nuclei_features(segmented)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spot_diameter": 0}, r"spot_diameter must be a positive finite number, got 0\."),
        ({"spot_diameter": "55"}, r"spot_diameter must be a positive finite number, got '55'\."),
        ({"fill": "median"}, r"fill must be one of \('mean', 'zero'\), got 'median'\."),
        ({"morphology_key": 3}, r"morphology_key must be a non-empty string \(an AnnData key\), got 3\."),
    ],
)
def test_nuclei_features_arguments(segmented, kwargs, message):
    before = segmented.copy()
    with pytest.raises(InputError, match=f"^{message}"):
        st.pp.nuclei_features(segmented, **kwargs)
    assert_unchanged(segmented, before)
