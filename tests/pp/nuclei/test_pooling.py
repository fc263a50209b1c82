"""The one ``fill``: pool_spots(fill=) and nuclei_features share fill_missing."""

import numpy as np
import pandas as pd
import pytest

from sthisto.pp import nuclei


def test_fill_missing():
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [np.nan, np.nan, np.nan]}, index=list("xyz"))
    np.testing.assert_array_equal(nuclei.fill_missing(df, "mean")["a"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(nuclei.fill_missing(df, "mean")["b"], [0.0, 0.0, 0.0])  # nothing to average
    np.testing.assert_array_equal(nuclei.fill_missing(df, "zero")["a"], [1.0, 0.0, 3.0])
    assert nuclei.fill_missing(df, "nan")["a"].isna().sum() == 1
    assert list(nuclei.fill_missing(df, "zero").index) == list("xyz") and df["a"].isna().sum() == 1  # a copy
    with pytest.raises(ValueError, match="fill must be"):
        nuclei.fill_missing(df, "median")


def test_pool_spots_fill_uses_it():
    feats = pd.DataFrame({"f": [2.0, 4.0, 10.0]})
    centroids = np.array([[0.0, 0.0], [1.0, 0.0], [100.0, 0.0]])
    spots = np.array([[0.0, 0.0], [100.0, 0.0], [500.0, 500.0]])
    out = nuclei.pool_spots(feats, centroids, spots, 5.0, fill="mean")
    np.testing.assert_array_equal(out["f"], [3.0, 10.0, 6.5])
    np.testing.assert_array_equal(out["nucleus_count"], [2, 1, 0])
    np.testing.assert_array_equal(out["no_nuclei"], [0, 0, 1])
    assert np.isnan(nuclei.pool_spots(feats, centroids, spots, 5.0)["f"][2])
