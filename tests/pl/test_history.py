import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import sthisto as st
from sthisto.pl._history import history_frame


class _Fake:
    def __init__(self, history):
        self.history = history


def _hist(val=True):
    h = pd.DataFrame({"epoch": [1, 2, 3], "gene": [3.0, 2.0, 1.0], "ranking": [0.1, 0.08, 0.05],
                      "recon": [0.5, 0.4, 0.3]})
    h["loss"] = h[["gene", "ranking", "recon"]].sum(1)
    if val:
        h["val_pcc"] = [0.1, 0.2, 0.25]
    return h


def test_history_frame():
    long = history_frame(_Fake(_hist()))
    assert list(long["quantity"].unique()) == ["loss", "gene", "ranking", "recon", "val_pcc"]
    assert set(long.loc[long["quantity"] == "val_pcc", "axis"]) == {"pcc"}
    np.testing.assert_allclose(long.loc[long["quantity"] == "gene", "value"], [3, 2, 1])
    with pytest.raises(ValueError, match="tl.fit"):
        history_frame(_Fake(pd.DataFrame()))


def test_training_history_plot_with_and_without_validation():
    ax = st.pl.training_history(_Fake(_hist()))
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "gene", "ranking", "recon"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [3, 2, 1])
    assert ax.get_yscale() == "log"
    assert ax.pcc_ax is not None
    np.testing.assert_allclose(ax.pcc_ax.get_lines()[0].get_ydata(), [0.1, 0.2, 0.25])
    plt.close("all")
    fig, given = plt.subplots()
    out = st.pl.training_history(_Fake(_hist(val=False)), ax=given, log_scale=False)
    assert out is given and out.pcc_ax is None and out.get_yscale() == "linear"
    plt.close(fig)


def test_training_history_of_a_fitted_model():
    from ..tl._model_data import FAST, model_sections  # noqa: TID252 - shared test helper

    model = st.tl.fit(model_sections((0,)), **FAST)
    ax = st.pl.training_history(model)
    assert len(ax.get_lines()) == 4
    plt.close("all")


def test_inner_validation_curves_and_the_chosen_epochs():
    from sthisto.pl._history import inner_curves

    from ..tl._model_data import FAST, model_sections  # noqa: TID252 - shared test helper

    model = st.tl.fit(model_sections((0, 1)), **{**FAST, "epoch_selection": "inner", "epochs": 6,
                                                 "eval_every": 2, "n_ensemble": 2})
    curves = inner_curves(model)
    assert set(curves["run"]) == {"inner:0", "inner:1", "mean"}
    mean = curves[curves.run == "mean"].set_index("epoch")["val_pcc"]
    assert list(mean.index) == [2, 4, 6]
    assert model.selection["epochs"] == int(mean.idxmax())
    ax = st.pl.training_history(model)
    labels = [line.get_label() for line in ax.pcc_ax.get_lines()]
    assert "inner val PCC (mean)" in labels and f"chosen: {model.selection['epochs']} epochs" in labels
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(),
                               model.history.query("run == 'member:0'")["loss"])
    with pytest.raises(ValueError, match="runs"):
        st.pl.training_history(model, run="member:7")
    plt.close("all")
