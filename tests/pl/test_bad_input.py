"""Bad input to the plots: checked before anything is drawn, naming the argument or the producer."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import sthisto as st  # noqa: E402
from sthisto._errors import InputError  # noqa: E402
from sthisto.pl._axes import axes_arg  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_ax_must_be_matplotlib_axes():
    fig, axes = plt.subplots(1, 2)
    assert axes_arg(axes, 2, "observed, predicted") == list(axes)
    assert axes_arg(None, 2, "x") is None
    with pytest.raises(TypeError, match=r"^ax must be 2 matplotlib Axes \(observed, predicted\), got str; e\.g\. "
                                        r"fig, ax = plt\.subplots\(1, 2\)\.$"):
        axes_arg("x", 2, "observed, predicted")
    with pytest.raises(TypeError, match=r"^ax must be a matplotlib Axes \(the losses\), got Figure; e\.g\. fig, ax = "
                                        r"plt\.subplots\(\)\.$"):
        axes_arg(fig, 1, "the losses")
    with pytest.raises(ValueError, match=r"^ax must hold 4 axes \(observed, predicted per gene\), got 2$"):
        axes_arg(axes, 4, "observed, predicted per gene")


def test_a_wrong_ax_fails_before_drawing(segmented_small):
    with pytest.raises(TypeError, match=r"^ax must be a matplotlib Axes \(the H&E crop\), got int"):
        st.pl.nuclei_outlines(segmented_small, ax=5)
    assert plt.get_fignums() == []  # no figure was made
    with pytest.raises(InputError, match=r"^margin must be a finite number >= 0, got -1\."):
        st.pl.nuclei_outlines(segmented_small, margin=-1)
    with pytest.raises(InputError, match=r"^spot index 999 is out of range for 30 spots \(0 to 29\)\.$"):
        st.pl.nuclei_outlines(segmented_small, spot=999)
    with pytest.raises(TypeError, match=r"^spot must be an obs name or an integer position, got float\.$"):
        st.pl.nuclei_outlines(segmented_small, spot=2.5)


@pytest.fixture
def segmented_small(synthetic_adata):
    a = synthetic_adata[:30].copy()
    st.pp.segment_nuclei(a, tile_size=256)
    return a


def test_cv_summary_checks_its_table():
    import pandas as pd

    df = pd.DataFrame({"fold": "a", "test_section": "a", "method": ["ridge", "mean"], "gene_set": "hvg",
                       "protocol": "paper", "metric": "pcc", "value": [0.3, float("nan")]})
    with pytest.raises(TypeError, match=r"^df must be the DataFrame returned by sthisto\.tl\.cross_validate, got "
                                        r"NoneType\.$"):
        st.pl.cv_summary(None)
    with pytest.raises(ValueError, match=r"^methods \['knn'\] are not in df \(for this protocol and metric: "
                                         r"\['ridge', 'mean'\]\)\.$"):
        st.pl.cv_summary(df, methods=["knn"])
    with pytest.raises(InputError, match=r"^metric must be a non-empty string \(a metric name such as 'pcc'\), got "
                                         r"\('pcc',\)\.$"):
        st.pl.cv_summary(df, metric=("pcc",))
    assert st.pl.cv_summary(df, methods=["ridge"]).get_legend() is not None


def test_spatial_pred_names_the_producer_of_a_missing_prediction(synthetic_adata):
    import numpy as np

    a = synthetic_adata
    a.layers["sthisto_pred"] = np.full(a.shape, np.nan, dtype=np.float32)
    a.layers["sthisto_pred"][:, 0] = 1.0
    with pytest.raises(ValueError, match=r"no prediction for \['GENE0001'\] in adata\.layers\['sthisto_pred'\]; the "
                                         r"model did not predict them \(run sthisto\.tl\.predict with a model fitted "
                                         r"on these genes: sthisto\.tl\.fit\(genes=\.\.\.\)\)\.$"):
        st.pl.spatial_pred(a, ["GENE0000", "GENE0001"])
    with pytest.raises(InputError, match=r"^spot_alpha must be a finite number between 0 and 1, got 5\.$"):
        st.pl.spatial_pred(a, "GENE0000", spot_alpha=5)
    with pytest.raises(InputError, match=r"^genes must be a name or a list of names, got 5\.$"):
        st.pl.spatial_pred(a, 5)
