"""Mini-batch training on spatial blocks and streaming prediction (tl._batches, tl._stream)."""

from __future__ import annotations

import numpy as np
import pytest

import sthisto as st
from sthisto.tl._batches import block_rings, section_blocks, spatial_blocks
from sthisto.tl._data import padded_rings, spot_graph

from ._model_data import FAST, model_sections


def test_spatial_blocks_partition_contiguous_tiles():
    (a,) = model_sections((0,), n_spots=400, n_genes=10)
    xy = np.asarray(a.obsm["spatial"], dtype=float)
    blocks = spatial_blocks(a.n_obs, 64, xy)
    allidx = np.concatenate(blocks)
    assert np.array_equal(np.sort(allidx), np.arange(a.n_obs))  # disjoint and covering
    assert all(32 <= len(b) <= 64 for b in blocks)
    # contiguous: a block's 1-hop halo is a fraction of the block (a scattered set's is several times it)
    g = spot_graph(a)
    halo = [len(section_blocks(g, 64, 1, xy)[i].nodes) - len(b) for i, b in enumerate(blocks)]
    rng = np.random.default_rng(0)
    scattered = section_blocks(g, 64, 1, rng.permutation(xy))  # blocks of shuffled coordinates
    assert np.mean(halo) < 0.5 * np.mean([len(b.nodes) - b.n_core for b in scattered])
    assert spatial_blocks(a.n_obs, 10**6, xy)[0].tolist() == list(range(a.n_obs))
    # without coordinates, runs of the reverse Cuthill-McKee order of the graph
    by_graph = spatial_blocks(a.n_obs, 64, None, g)
    assert np.array_equal(np.sort(np.concatenate(by_graph)), np.arange(a.n_obs))
    assert max(len(b) for b in by_graph) <= 64


def test_halo_is_ordered_by_hops_and_subgraph_is_induced():
    (a,) = model_sections((0,), n_spots=200, n_genes=10)
    g = spot_graph(a)
    block = section_blocks(g, 40, 2, np.asarray(a.obsm["spatial"]))[0]
    dense = g.toarray()
    core = block.core
    hop1 = block.nodes[block.hop_counts[0]:block.hop_counts[1]]
    hop2 = block.nodes[block.hop_counts[1]:block.hop_counts[2]]
    near = dense[core].any(0)
    assert set(hop1) == set(np.flatnonzero(near)) - set(core)
    assert set(hop2) == set(np.flatnonzero(dense[hop1].any(0))) - set(core) - set(hop1)
    nodes, ei = block.prefix(2)
    sub = dense[np.ix_(nodes, nodes)]
    assert ei.shape[1] == int(sub.sum())
    assert sub[ei[0], ei[1]].all()


def test_block_rings_are_the_section_rings_within_the_core():
    (a,) = model_sections((1,), n_spots=300, n_genes=10)
    g = spot_graph(a)
    full = padded_rings(g)
    for block in section_blocks(g, 50, 2, np.asarray(a.obsm["spatial"]))[:3]:
        rings = block_rings(block, 3)
        core = block.core
        pos = {int(s): i for i, s in enumerate(core)}
        for t in range(block.n_core):
            for k in range(3):
                want = {pos[int(j)] for j in full[core[t], k] if j >= 0 and int(j) in pos}
                got = {int(j) for j in rings[t, k] if j >= 0}
                assert got == want


@pytest.fixture(scope="module")
def model():
    train = model_sections((0, 1))
    return st.tl.fit(train, seed=0, **{**FAST, "n_ensemble": 2})


@pytest.mark.parametrize("batch_size", [7, 23, 64])
def test_streamed_prediction_equals_full_batch(model, batch_size):
    (test,) = model_sections((2,))
    full = model.predict(test)
    streamed = model.predict(test, batch_size=batch_size)
    assert streamed.dtype == np.float32
    np.testing.assert_allclose(streamed, full, rtol=1e-5, atol=1e-5)
    st.tl.predict(test, model, batch_size=batch_size)
    pos = test.var_names.get_indexer(model.genes)
    np.testing.assert_allclose(test.layers["sthisto_pred"][:, pos], full, rtol=1e-5, atol=1e-5)


def test_streamed_prediction_without_coordinates(model):
    (test,) = model_sections((2,))
    full = model.predict(test)
    del test.obsm["spatial"]
    np.testing.assert_allclose(model.predict(test, batch_size=16), full, rtol=1e-5, atol=1e-5)


def test_block_loss_is_the_core_loss_of_the_section():
    """Without inter-modal attention (global over spots), a block's core loss is exact."""
    import torch

    sections = model_sections((0,), n_spots=150)
    m = st.tl.fit(sections, seed=0, **{**FAST, "use_inter": False, "loss_weights": {"ranking": 0.0, "recon": 0.0}})
    member = m.module.members[0].eval()
    data = m.preprocessing.section(sections[0], targets=True)
    xs, ei, _, target = data.tensors("cpu")
    with torch.no_grad():
        z_full = member(xs, ei)[1]
        for block in data.blocks(40, 2):
            nodes, bei = block.prefix(2)
            bxs = [x[torch.as_tensor(nodes)] for x in xs]
            core = torch.as_tensor(block.core)
            loss, parts = member.loss(bxs, torch.as_tensor(bei), target[core], n_core=block.n_core)
            want = torch.nn.functional.mse_loss(z_full[core], target[core])
            assert parts["gene"] == pytest.approx(float(want), rel=1e-5)


def test_minibatch_fit_trains_deterministically():
    train, (test,) = model_sections((0, 1)), model_sections((2,))
    kw = {**FAST, "epochs": 6, "batch_size": 32}
    a = st.tl.fit(train, seed=1, **kw)
    b = st.tl.fit(model_sections((0, 1)), seed=1, **kw)
    np.testing.assert_array_equal(a.predict(test), b.predict(test))
    h = a.history
    assert np.isfinite(h[["gene", "ranking", "recon"]].to_numpy()).all()
    assert h["gene"].iloc[-1] < h["gene"].iloc[0]
    assert a.config.batch_size == 32
    full = st.tl.fit(model_sections((0, 1)), seed=1, **{**kw, "batch_size": None})
    assert not np.allclose(full.predict(test), a.predict(test))  # more, smaller steps: another model


def test_one_block_per_section_is_full_batch():
    train, (test,) = model_sections((0, 1)), model_sections((2,))
    full = st.tl.fit(train, seed=2, **FAST)
    one = st.tl.fit(model_sections((0, 1)), seed=2, **{**FAST, "batch_size": 10_000})
    np.testing.assert_array_equal(one.predict(test), full.predict(test))


def test_minibatch_inner_validation_and_save_load(tmp_path):
    train, (test,) = model_sections((0, 1)), model_sections((2,))
    m = st.tl.fit(train, seed=0, **{**FAST, "epochs": 4, "eval_every": 2, "epoch_selection": "inner",
                                    "batch_size": 25})
    assert m.selection["method"] == "inner" and set(m.selection["curve"]) == {"2", "4"}
    assert np.isfinite(list(m.selection["curve"].values())).all()
    m.save(tmp_path / "m")
    back = st.tl.M2TGLGO.load(tmp_path / "m")
    assert back.config.batch_size == 25
    np.testing.assert_array_equal(back.predict(test), m.predict(test))


def test_config_saved_before_batch_size_loads_as_full_batch():
    cfg = st.tl.M2TGLGOConfig().to_dict()
    del cfg["batch_size"]
    assert st.tl.M2TGLGOConfig.from_dict(cfg).batch_size is None


@pytest.mark.parametrize("bad", [0, -3, 2.5, "64", True])
def test_bad_batch_size_names_the_argument(model, bad):
    (test,) = model_sections((2,))
    with pytest.raises(ValueError, match="batch_size"):
        st.tl.fit(model_sections((0, 1)), **{**FAST, "batch_size": bad})
    with pytest.raises(ValueError, match="batch_size"):
        st.tl.predict(test, model, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size"):
        st.tl.predict_anndata(test, model, batch_size=bad)


def test_large_section_streams_by_default(model, monkeypatch):
    """Above STREAM_MIN_SPOTS spots, predict streams without being asked (same numbers)."""
    from sthisto.tl import _stream

    (test,) = model_sections((2,))
    full = model.predict(test)
    calls = []
    real = _stream.stream_predict
    monkeypatch.setattr(_stream, "STREAM_MIN_SPOTS", 50)
    monkeypatch.setattr(_stream, "STREAM_BATCH_SIZE", 30)
    monkeypatch.setattr(_stream, "stream_predict", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    np.testing.assert_allclose(model.predict(test), full, rtol=1e-5, atol=1e-5)
    assert calls and calls[0] >= 4  # 100 spots in blocks of <= 30
