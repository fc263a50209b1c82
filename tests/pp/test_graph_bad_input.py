"""Degenerate spot layouts and graph arguments: errors before anything is written."""

import logging

import numpy as np
import pytest

import sthisto as st
from sthisto._errors import InputError
from tests._unchanged import assert_unchanged


def test_identical_spot_coordinates(synthetic_adata):
    a = synthetic_adata
    a.obsm["spatial"][7] = a.obsm["spatial"][3]
    before = a.copy()
    with pytest.raises(InputError, match=r"^adata\.obsm\['spatial'\]: 2 spots share their centre with another spot "
                                         r"\(e\.g\. 'spot0003' and 'spot0007' at \(.*\)\); a spot graph needs distinct "
                                         r"positions\. To fix: drop the duplicated spots"):
        st.pp.spatial_graph(a)
    assert_unchanged(a, before)
    with pytest.raises(InputError, match=r"^xy: 2 spots share their centre .* \(e\.g\. '3' and '7'"):
        st.pp.knn_graph(a.obsm["spatial"])


def test_radius_without_edges(synthetic_adata):
    a = synthetic_adata
    before = a.copy()
    with pytest.raises(InputError, match=r"^radius=5 links no two spots: the median distance to the nearest spot is "
                                         r"100 \(same units as the coordinates, full-resolution pixels for "
                                         r"obsm\['spatial'\]\)\. To fix: pass a radius above it \(e\.g\. radius=110\), "
                                         r"or n_neighs= for a kNN graph\.$"):
        st.pp.spatial_graph(a, radius=5)
    assert_unchanged(a, before)


def test_radius_that_isolates_some_spots_warns(synthetic_adata, caplog):
    a = synthetic_adata
    a.obsm["spatial"][0] = [1e4, 1e4]
    with caplog.at_level(logging.WARNING, logger="sthisto"):
        st.pp.spatial_graph(a, radius=101)
    assert "radius=101 leaves 1 of 100 spots without a neighbour" in caplog.text
    assert a.obsp["spatial_connectivities"][0].nnz == 0 and a.obsp["spatial_connectivities"].nnz > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_neighs": 0}, r"n_neighs must be an integer >= 1, got 0\."),
        ({"n_neighs": 2.5}, r"n_neighs must be an integer >= 1, got 2\.5\."),
        ({"n_neighs": "6"}, r"n_neighs must be an integer >= 1, got '6'\."),
        ({"radius": float("inf")}, r"radius must be a positive finite number, got inf\."),
        ({"radius": -3}, r"radius must be a positive finite number, got -3\."),
    ],
)
def test_bad_graph_arguments(synthetic_adata, kwargs, message):
    before = synthetic_adata.copy()
    with pytest.raises(InputError, match=f"^{message}$"):
        st.pp.spatial_graph(synthetic_adata, **kwargs)
    assert_unchanged(synthetic_adata, before)


def test_nan_coordinates(synthetic_adata):
    synthetic_adata.obsm["spatial"][4, 1] = np.nan
    with pytest.raises(ValueError, match=r"adata\.obsm\['spatial'\] contains NaN or infinite coordinates"):
        st.pp.spatial_graph(synthetic_adata)
