"""sthisto.pl.nuclei_outlines: outlines over H&E for one spot; data preparation asserted."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import sthisto as st  # noqa: E402
from sthisto.pl._nuclei_outlines import nuclei_region  # noqa: E402


@pytest.fixture
def segmented(synthetic_adata):
    st.pp.segment_nuclei(synthetic_adata, region="all")
    return synthetic_adata


def test_region_data(segmented, tmp_path):
    data = nuclei_region(segmented, "spot0012")
    y0, x0, y1, x1 = data["window"]
    assert data["image"].shape == (y1 - y0, x1 - x0, 3)
    assert data["labels"].shape == data["image"].shape[:2]
    table = segmented.uns["sthisto_nuclei"]["nuclei"]
    inside = table[(table.x >= x0) & (table.x < x1) & (table.y >= y0) & (table.y < y1)]
    assert len(data["centroids"]) == len(inside) > 0
    # every plotted centroid sits on a labelled pixel of the re-segmented crop
    cx, cy = np.round(data["centroids"]).astype(int).T
    assert (data["labels"][cy, cx] > 0).mean() > 0.95
    # a stored label image is used as is
    path = tmp_path / "lab.npy"
    st.pp.segment_nuclei(segmented, region="all", labels_path=path)
    stored = nuclei_region(segmented, "spot0012")
    np.testing.assert_array_equal(stored["labels"], np.load(path)[y0:y1, x0:x1])


def test_plot_returns_axes_and_draws(segmented):
    fig, ax = plt.subplots()
    out = st.pl.nuclei_outlines(segmented, spot=12, ax=ax)
    assert out is ax and len(ax.images) == 2 and len(ax.patches) == 1
    assert "spot0012" in ax.get_title()
    plt.close(fig)
    ax2 = st.pl.nuclei_outlines(segmented)  # default: the spot with the most nuclei
    assert ax2.figure is not fig
    plt.close(ax2.figure)


def test_plot_errors(synthetic_adata):
    with pytest.raises(KeyError, match="segment_nuclei"):
        st.pl.nuclei_outlines(synthetic_adata)
    st.pp.segment_nuclei(synthetic_adata)
    with pytest.raises(KeyError, match="obs_names"):
        st.pl.nuclei_outlines(synthetic_adata, spot="nope")
    with pytest.raises(ValueError, match="out of range"):
        st.pl.nuclei_outlines(synthetic_adata, spot=10_000)


def test_old_name_still_works_with_a_warning(segmented):
    with pytest.warns(FutureWarning, match="nuclei_outlines"):
        plot = st.pl.nuclei
    assert plot is st.pl.nuclei_outlines
    with pytest.raises(AttributeError):
        st.pl.no_such_plot  # noqa: B018
