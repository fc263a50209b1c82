import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import sthisto as st  # noqa: E402
from sthisto.pl._cv import _cv_summary_data  # noqa: E402

from ._compare import check_image  # noqa: E402


def _df():
    rows = []
    for gs in ("hvg", "heg"):
        for m, base in (("ridge", 0.5), ("knn", 0.3), ("mean", np.nan)):
            for i, sec in enumerate("ABC"):
                rows.append({"fold": sec, "test_section": sec, "method": m, "gene_set": gs,
                             "protocol": "paper", "metric": "pcc", "value": base + 0.05 * i})
                rows.append({"fold": sec, "test_section": sec, "method": m, "gene_set": gs,
                             "protocol": "paper", "metric": "mse", "value": 1.0 + i})
    df = pd.DataFrame(rows)
    df.attrs["protocols"] = {"paper": "per-section mean PCC"}
    return df


def test_prepared_data():
    d = _cv_summary_data(_df())
    assert d["methods"] == ["ridge", "knn", "mean"] and d["gene_sets"] == ["hvg", "heg"]
    np.testing.assert_allclose(d["values"][("hvg", "ridge")], [0.5, 0.55, 0.6])
    assert d["values"][("heg", "mean")].size == 0 and d["n_undefined"][("heg", "mean")] == 3
    assert d["label"] == "per-section mean PCC"
    m = _cv_summary_data(_df(), metric="mse", methods=["knn"])
    np.testing.assert_allclose(m["values"][("hvg", "knn")], [1, 2, 3])
    with pytest.raises(ValueError, match="available protocols"):
        _cv_summary_data(_df(), protocol="hest")
    with pytest.raises(ValueError, match="cross_validate"):
        _cv_summary_data(pd.DataFrame({"x": [1]}))


def test_render_and_image(tmp_path):
    fig, ax = plt.subplots()
    assert st.pl.cv_summary(_df(), ax=ax) is ax
    points = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    np.testing.assert_allclose(np.sort(points), np.sort(np.tile([0.5, 0.55, 0.6, 0.3, 0.35, 0.4], 2)))
    assert any("undefined" in t.get_text() for t in ax.texts)
    plt.close("all")
    with plt.style.context("default"):
        ax = st.pl.cv_summary(_df(), figsize=(4, 3))
        check_image(ax.figure, "cv_summary.png", tmp_path)
    plt.close("all")
