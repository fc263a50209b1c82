"""SpatialData end to end on real bundled data: read → pp → tl → write back → reopen the zarr."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sthisto as st
from tests.conftest import import_spatial

sd = import_spatial("spatialdata")

MODALITIES = ("texture", "morphology", "topology")


@pytest.fixture(scope="module")
def demo_zarr(tmp_path_factory):
    """The bundled C2 and C3 sections as SpatialData, written to zarr and reopened (lazy)."""
    sdata = st.datasets.her2st_demo_spatialdata(["C2", "C3"])
    path = tmp_path_factory.mktemp("sd") / "demo.zarr"
    sdata.write(path)
    return path


def _prepare(sdata, section, genes):
    adata = st.read.spatialdata(sdata, table_key=f"{section}_counts")
    adata = adata[:, genes].copy()
    st.pp.segment_nuclei(adata)
    st.pp.nuclei_features(adata)
    st.pp.image_features(adata, model="texture", patch_px=64)
    st.pp.spatial_graph(adata)
    return adata


def test_demo_spatialdata_structure():
    sdata = st.datasets.her2st_demo_spatialdata(["C2"])
    assert set(sdata.images) == {"C2_image"} and set(sdata.shapes) == {"C2_spots"}
    assert set(sdata.tables) == {"C2_counts"}
    table = sdata.tables["C2_counts"]
    ref = st.datasets.her2st_demo(["C2"])[0]
    assert table.shape == ref.shape
    assert table.uns["spatialdata_attrs"]["region"] == "C2_spots"
    np.testing.assert_array_equal(sdata.shapes["C2_spots"].geometry.x.to_numpy(), ref.obsm["spatial"][:, 0])


def test_read_pp_fit_predict_write_and_reopen(demo_zarr, tmp_path):
    sdata = sd.read_zarr(demo_zarr)
    genes = st.datasets.her2st_panel()[:40]
    genes = [g for g in genes if g in sdata.tables["C2_counts"].var_names][:30]
    train, test = (_prepare(sdata, s, genes) for s in ("C2", "C3"))
    import dask.array as da

    assert isinstance(test.uns["spatial"]["C3_image"]["images"]["fullres"], da.Array)  # read from zarr lazily
    assert len(test.uns["sthisto_nuclei"]["nuclei"]) > 500
    model = st.tl.fit([train], genes=genes, modalities=MODALITIES, epochs=3, use_go=False, progress=False)
    st.tl.predict(test, model)
    st.tl.evaluate(test)

    st.io.to_spatialdata(test, sdata)
    table = sdata.tables["C3_spots_sthisto"]
    assert table.uns["spatialdata_attrs"] == {"region": "C3_spots", "region_key": "region",
                                              "instance_key": "instance_id"}
    out = tmp_path / "out.zarr"
    sdata.write(out)
    back = sd.read_zarr(out)
    table = back.tables["C3_spots_sthisto"]
    pred = test.layers["sthisto_pred"][:, test.var_names.get_indexer(model.genes)]
    np.testing.assert_allclose(np.asarray(table.X), pred, rtol=1e-6)
    assert list(table.var_names) == list(model.genes)
    np.testing.assert_allclose(table.var["sthisto_pcc"].to_numpy(), test.var["sthisto_pcc"].to_numpy(), equal_nan=True)
    pd.testing.assert_frame_equal(table.obsm["sthisto_morphology"], test.obsm["sthisto_morphology"],
                                  check_names=False)
    np.testing.assert_array_equal(table.obs["instance_id"].to_numpy(), test.obs["instance_id"].to_numpy())
    # nuclei: circles in the image frame + an annotating table with µm morphology
    nuclei = test.uns["sthisto_nuclei"]["nuclei"]
    circles = back.shapes["C3_image_nuclei"]
    assert len(circles) == len(nuclei)
    np.testing.assert_allclose(circles.geometry.x.to_numpy(), nuclei["x"].to_numpy())
    ntable = back.tables["C3_image_nuclei_table"]
    np.testing.assert_allclose(ntable[:, "area_um2"].X.ravel(),
                               nuclei["area"].to_numpy() * test.uns["sthisto_nuclei"]["params"]["microns_per_pixel"] ** 2,
                               rtol=1e-6)
    # the reopened object is still a valid sthisto input
    again = st.read.spatialdata(back, table_key="C3_counts")
    np.testing.assert_allclose(again.obsm["spatial"], test.obsm["spatial"])


def test_spatialdata_plot_draws_predicted_expression(demo_zarr):
    import_spatial("spatialdata_plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sdata = sd.read_zarr(demo_zarr)
    adata = st.read.spatialdata(sdata, table_key="C2_counts")
    adata = adata[:, ["ERBB2", "GNAS"]].copy()
    rng = np.random.default_rng(0)
    pred = rng.normal(size=adata.shape).astype(np.float32)
    adata.layers["sthisto_pred"] = pred
    adata.uns["sthisto_pred"] = {"genes": np.array(["ERBB2", "GNAS"], dtype=object)}
    st.io.to_spatialdata(adata, sdata)
    fig, ax = plt.subplots()
    (sdata.pl.render_images("C2_image")
     .pl.render_shapes("C2_spots", color="ERBB2", table_name="C2_spots_sthisto")
     .pl.show(ax=ax, coordinate_systems="C2", show=False))
    colored = [c for c in ax.collections if len(np.atleast_2d(c.get_facecolors())) == adata.n_obs]
    assert colored, "spatialdata-plot drew no collection with one face per spot"
    faces = np.atleast_2d(colored[0].get_facecolors())
    assert len(np.unique(faces.round(4), axis=0)) > 10  # coloured by the predicted values, not one colour
    assert ax.images, "the H&E image is drawn below the spots"
    plt.close(fig)


def test_nuclei_labels_and_bad_targets(synthetic_adata, tmp_path):
    st.pp.segment_nuclei(synthetic_adata, labels_path=tmp_path / "labels.npy")
    sdata = st.io.to_spatialdata(synthetic_adata)
    labels = sdata.labels["synthetic_nuclei_labels"]
    np.testing.assert_array_equal(np.asarray(labels.data), np.load(tmp_path / "labels.npy"))
    table = sdata.tables["synthetic_nuclei_table"]
    assert table.uns["spatialdata_attrs"]["region"] == "synthetic_nuclei"
    assert set(table.obs["spot"]) <= {"", *synthetic_adata.obs_names}
    sdata.write(tmp_path / "s.zarr")
    back = sd.read_zarr(tmp_path / "s.zarr")
    np.testing.assert_array_equal(np.asarray(back.labels["synthetic_nuclei_labels"].data), np.load(tmp_path / "labels.npy"))
    with pytest.raises(ValueError, match="was not read with sthisto.read.spatialdata"):
        st.io.to_spatialdata(synthetic_adata, sdata)
    with pytest.raises(TypeError, match="spatialdata.SpatialData or None"):
        st.io.to_spatialdata(st.read.spatialdata(back, table_key="synthetic_counts"), {"not": "sdata"})
