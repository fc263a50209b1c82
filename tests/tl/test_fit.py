import numpy as np
import pytest

import sthisto as st
from sthisto.tl._data import log_targets
from sthisto.tl._metrics import pearson_columns

from ._model_data import FAST, add_go_prior, model_sections

MODALITY_KEYS = ("sthisto_deep", "sthisto_morphology", "sthisto_topology")


def _mean_pcc(model, adata):
    return float(np.nanmean(pearson_columns(log_targets(adata, model.genes), model.predict(adata))))


def _shuffle_features(adata, seed):
    perm = np.random.default_rng(seed).permutation(adata.n_obs)
    for k in MODALITY_KEYS:
        v = adata.obsm[k]
        adata.obsm[k] = v.iloc[perm].set_axis(adata.obs_names) if hasattr(v, "iloc") else v[perm]
    return adata


def test_fit_recovers_planted_signal_above_shuffled_control():
    train, (test,) = model_sections((0, 1)), model_sections((2,))
    kw = {"epochs": 60, "lr": 3e-3, "hidden_dims": (32, 64), "n_top_genes": 30, "progress": False}
    model = st.tl.fit(train, **kw)
    control = st.tl.fit([_shuffle_features(a, i) for i, a in enumerate(model_sections((0, 1)))], **kw)
    real, shuffled = _mean_pcc(model, test), _mean_pcc(control, test)
    assert real > 0.3, real
    assert shuffled < 0.15, shuffled
    assert real - shuffled > 0.25


def test_fit_history_and_validation():
    train, (val,) = model_sections((0, 1)), model_sections((2,))
    model = st.tl.fit(train, val_adata=val, **{**FAST, "epochs": 4})
    h = model.history
    assert list(h["epoch"]) == [1, 2, 3, 4]
    assert {"gene", "ranking", "recon", "loss", "val_pcc"} <= set(h.columns)
    assert np.isfinite(h[["gene", "ranking", "recon", "loss", "val_pcc"]].to_numpy()).all()
    assert h["gene"].iloc[-1] < h["gene"].iloc[0]
    assert len(model.genes) == 20
    assert set(model.genes) <= set(train[0].var_names)


def test_same_seed_is_bit_identical_on_cpu():
    (test,) = model_sections((2,))
    preds = [st.tl.fit(model_sections((0, 1)), seed=3, **FAST).predict(test) for _ in range(2)]
    np.testing.assert_array_equal(preds[0], preds[1])
    other = st.tl.fit(model_sections((0, 1)), seed=4, **FAST).predict(test)
    assert not np.array_equal(preds[0], other)


@pytest.mark.parametrize(
    "switches",
    [{"use_within": False}, {"use_inter": False}, {"use_ranking": False}, {"use_recon": False},
     {"use_go": False}, {"modalities": ("deep",)}, {"modalities": ("morphology", "topology")},
     {"gamma": 0.0}, {"loss_weights": {"ranking": 0.5, "recon": 0.0}}],
    ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()),
)
def test_ablations_train_and_predict(switches):
    train, (test,) = model_sections((0, 1)), model_sections((2,))
    model = st.tl.fit(train, **{**FAST, "epochs": 2, **switches})
    pred = model.predict(test)
    assert pred.shape == (test.n_obs, len(model.genes)) and np.isfinite(pred).all()
    assert len(model.history) == 2
    cols = set(model.history.columns)
    weights = {**FAST["loss_weights"], **switches.get("loss_weights", {})}
    assert ("ranking" in cols) == (switches.get("use_ranking", True) and weights["ranking"] > 0)
    assert ("recon" in cols) == (switches.get("use_recon", True) and weights["recon"] > 0)
    assert model.modalities == list(switches.get("modalities", ("deep", "morphology", "topology")))


def test_explicit_genes_layer_and_single_section():
    (a,) = model_sections((0,))
    a.layers["counts"] = a.X.copy()
    a.X = a.X * 0  # targets must come from the layer
    genes = list(a.var_names[:7])
    model = st.tl.fit(a, genes=genes, layer="counts", **FAST)
    assert model.genes == genes
    assert model.history["gene"].iloc[0] > 0.1


def test_early_stopping_restores_best():
    train, (val,) = model_sections((0, 1)), model_sections((2,))
    model = st.tl.fit(train, val_adata=val, early_stopping=True, patience=2,
                      **{**FAST, "epochs": 40, "lr": 0.5})
    h = model.history
    assert len(h) < 40
    assert _mean_pcc(model, val) == pytest.approx(h["val_pcc"].max(), abs=1e-5)
    with pytest.raises(ValueError, match="val_adata"):
        st.tl.fit(train, early_stopping=True, **FAST)


# ---------------------------------------------------------------------------- bad input
def test_nan_features_raise():
    train = model_sections((0, 1))
    train[1].obsm["sthisto_deep"][3, 2] = np.nan
    with pytest.raises(ValueError, match=r"training section 1.*NaN"):
        st.tl.fit(train, **FAST)


def test_too_few_spots_raise():
    train = model_sections((0, 1))
    train[1] = train[1][:6].copy()
    with pytest.raises(ValueError, match="at least 7"):
        st.tl.fit(train, **FAST)


def test_mismatched_feature_dims_raise():
    train = model_sections((0, 1))
    train[1].obsm["sthisto_deep"] = train[1].obsm["sthisto_deep"][:, :10]
    with pytest.raises(ValueError, match=r"deep features .* 10 columns.*24"):
        st.tl.fit(train, **FAST)


def test_genes_absent_from_go_graph_raise():
    a, b = model_sections((0, 1), go=False)
    a = add_go_prior(a[:, :40].copy())  # the GO graph was built on 40 genes only
    with pytest.raises(KeyError, match="absent from the GO gene graph"):
        st.tl.fit([a, b], genes=list(b.var_names[30:45]), **FAST)


def test_missing_inputs_name_the_pp_function():
    a, b = model_sections((0, 1), go=False)
    with pytest.raises(KeyError, match="gene_ontology_graph"):
        st.tl.fit([a, b], **FAST)
    st.tl.fit([a, b], use_go=False, **FAST)  # the ablation needs no GO prior
    del a.obsm["sthisto_morphology"]
    with pytest.raises(KeyError, match="nuclei_features"):
        st.tl.fit([a, b], use_go=False, **FAST)
    (c,) = model_sections((2,))
    del c.obsp["spatial_connectivities"]
    with pytest.raises(KeyError, match="spatial_graph"):
        st.tl.fit(c, **FAST)
    (d,) = model_sections((2,))
    del d.varm["sthisto_gene2vec"]
    with pytest.raises(KeyError, match="gene_embeddings"):
        st.tl.fit(d, **FAST)
    (e,) = model_sections((2,))
    e.varm["sthisto_gene2vec"][0, 0] = np.nan
    with pytest.raises(ValueError, match="gene2vec"):
        st.tl.fit(e, genes=list(e.var_names[:5]), **FAST)


def test_bad_arguments():
    train = model_sections((0,))
    with pytest.raises(ValueError, match="use_within"):
        st.tl.fit(train, use_within=False, use_inter=False, **FAST)
    with pytest.raises(ValueError, match="at least one"):
        st.tl.fit([], **FAST)
    with pytest.raises(ValueError, match="duplicates"):
        st.tl.fit(train, modalities=("deep", "deep"), **FAST)
    with pytest.raises(KeyError, match="lacks"):
        st.tl.fit(train, genes=["NOT_A_GENE"], use_go=False, **FAST)


def test_cuda_without_cuda_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA"):
        st.tl.fit(model_sections((0,)), device="cuda", **FAST)


def test_fit_on_requested_device(device):
    model = st.tl.fit(model_sections((0, 1)), device=device, **FAST)
    assert model.device.type == device.split(":")[0]
    (test,) = model_sections((2,))
    assert model.predict(test).dtype == np.float32
