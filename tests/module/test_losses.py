import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sthisto.module import default_quantiles, reconstruction_loss, sonrm_loss
from sthisto.pp import hop_rings, knn_graph
from sthisto.tl._data import edge_index, padded_rings


def _grid(n=49, seed=0):
    rng = np.random.default_rng(seed)
    side = int(np.sqrt(n))
    xy = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2).astype(float)
    conn, _ = knn_graph(xy + rng.normal(0, 1e-3, xy.shape), n_neighs=6)
    return xy, conn


def _sonrm_reference(h, conn, q, eps):
    """Plain per-spot loop (numpy quantiles), for comparison with the vectorised loss."""
    rings = hop_rings(conn, max_hop=3)
    z = h / np.linalg.norm(h, axis=1, keepdims=True)
    total, n_ok = 0.0, 0
    for t in range(len(h)):
        qs = []
        for r in rings:
            members = r[t].indices
            qs.append(None if len(members) == 0 else np.quantile(z[members] @ z[t], q))
        terms = [np.maximum(0, qs[k + 1] - qs[k] + eps).sum()
                 for k in range(2) if qs[k] is not None and qs[k + 1] is not None]
        if terms:
            total += sum(terms)
            n_ok += 1
    return total / n_ok


def test_default_quantiles():
    assert default_quantiles(4).tolist() == [0.25, 0.5, 0.75, 1.0]
    assert default_quantiles(2).tolist() == [0.5, 1.0]
    with pytest.raises(ValueError):
        default_quantiles(0)


def test_padded_rings_match_hop_rings():
    _, conn = _grid()
    pad = padded_rings(conn)
    rings = hop_rings(conn, max_hop=3)
    assert pad.shape[:2] == (conn.shape[0], 3)
    for k, r in enumerate(rings):
        for t in (0, 10, 24):
            got = sorted(x for x in pad[t, k] if x >= 0)
            assert got == sorted(r[t].indices.tolist())


def test_sonrm_matches_per_spot_reference():
    xy, conn = _grid()
    rng = np.random.default_rng(1)
    h = rng.normal(size=(len(xy), 8))
    q = default_quantiles(4)
    got = sonrm_loss(torch.tensor(h), torch.tensor(padded_rings(conn)), quantiles=q.double(), epsilon=0.01)
    ref = _sonrm_reference(h, conn, q.numpy(), 0.01)
    assert got.item() == pytest.approx(ref, rel=1e-6)


def test_sonrm_zero_when_rings_are_ordered_and_positive_when_reversed():
    xy, conn = _grid()
    rings = torch.tensor(padded_rings(conn))
    q = default_quantiles(4)
    # embedding = position on a circle of radius ~ grid distance: similarity falls with distance
    xy_t = torch.tensor(xy - xy.mean(0), dtype=torch.float32)
    h_smooth = torch.cat([torch.cos(xy_t / 6), torch.sin(xy_t / 6)], 1)
    rough = sonrm_loss(torch.randn(len(xy), 4), rings, quantiles=q)
    smooth = sonrm_loss(h_smooth, rings, quantiles=q, epsilon=0.0)
    assert smooth.item() < rough.item()
    assert rough.item() > 0


def test_sonrm_gradient_and_empty_rings():
    # a path graph of 3 nodes: the end nodes have no ring 3, the middle has no ring 2
    conn = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32))
    # node 0 is closer (in embedding) to its 2-hop node 2 than to its neighbour 1: violated
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]], requires_grad=True)
    loss = sonrm_loss(h, torch.tensor(padded_rings(conn)), quantiles=default_quantiles(4))
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0
    # no valid ring pair at all (isolated nodes) -> zero, still differentiable
    empty = torch.full((3, 3, 1), -1)
    h2 = torch.randn(3, 4, requires_grad=True)
    out = sonrm_loss(h2, empty, quantiles=default_quantiles(4))
    out.backward()
    assert out.item() == 0.0


def test_reconstruction_dense_matches_formula():
    _, conn = _grid(25)
    h = torch.randn(25, 5, dtype=torch.float64)
    ei = torch.tensor(edge_index(conn))
    z = torch.nn.functional.normalize(h, dim=1)
    a = torch.tensor(conn.toarray(), dtype=torch.float64)
    err = (a - torch.sigmoid(z @ z.T)) ** 2
    off = ~torch.eye(25, dtype=bool)
    assert reconstruction_loss(h, ei).item() == pytest.approx(err[off].mean().item(), rel=1e-10)


def test_reconstruction_sampled_has_the_dense_expectation():
    _, conn = _grid(64)
    h = torch.randn(64, 6, dtype=torch.float64)
    ei = torch.tensor(edge_index(conn))
    dense = reconstruction_loss(h, ei).item()
    gen = torch.Generator().manual_seed(0)
    draws = [
        reconstruction_loss(h, ei, dense_max_spots=10, n_negatives=500, generator=gen).item()
        for _ in range(400)
    ]
    assert np.mean(draws) == pytest.approx(dense, rel=0.01)
    assert np.std(draws) > 0  # it really samples


def test_reconstruction_sampled_memory_is_linear():
    # 60k spots: a dense N×N float32 matrix would need 14 GB; the sampled loss needs O(N)
    n = 60_000
    h = torch.randn(n, 4, requires_grad=True)
    ring = torch.arange(n)
    ei = torch.stack([torch.cat([ring, (ring + 1) % n]), torch.cat([(ring + 1) % n, ring])])
    loss = reconstruction_loss(h, ei, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and h.grad.abs().sum() > 0


def test_sonrm_gram_and_gather_paths_agree(monkeypatch):
    from sthisto.module import _losses

    xy, conn = _grid()
    rings = torch.tensor(padded_rings(conn))
    h = torch.randn(len(xy), 8, dtype=torch.float64, requires_grad=True)
    q = default_quantiles(4).double()
    gram = sonrm_loss(h, rings, quantiles=q)
    (g_gram,) = torch.autograd.grad(gram, h)
    monkeypatch.setattr(_losses, "GRAM_MAX_SPOTS", 0)
    monkeypatch.setattr(_losses, "PAIR_CHUNK", 64)  # several checkpointed blocks
    gather = sonrm_loss(h, rings, quantiles=q)
    (g_gather,) = torch.autograd.grad(gather, h)
    assert gather.item() == pytest.approx(gram.item(), rel=1e-12)
    torch.testing.assert_close(g_gather, g_gram)


def test_reconstruction_dense_blocks_agree(monkeypatch):
    from sthisto.module import _losses

    _, conn = _grid(49)
    h = torch.randn(49, 5, dtype=torch.float64, requires_grad=True)
    ei = torch.tensor(edge_index(conn))
    one = reconstruction_loss(h, ei)
    (g_one,) = torch.autograd.grad(one, h)
    monkeypatch.setattr(_losses, "DENSE_BLOCK", 49 * 5)  # 10 checkpointed row blocks
    blocks = reconstruction_loss(h, ei)
    (g_blocks,) = torch.autograd.grad(blocks, h)
    assert blocks.item() == pytest.approx(one.item(), rel=1e-12)
    torch.testing.assert_close(g_blocks, g_one)


def test_centred_sonrm_is_sonrm_of_the_centred_embedding():
    from sthisto.module._losses import centred_sonrm_loss

    xy, conn = _grid()
    h = np.abs(np.random.default_rng(3).normal(size=(len(xy), 6))) + 0.5  # positive, like a sigmoid H
    q = [0.25, 0.5, 0.75, 1.0]
    rings = torch.tensor(padded_rings(conn))
    got = centred_sonrm_loss(torch.tensor(h), rings, quantiles=torch.tensor(q), epsilon=0.01).item()
    assert got == pytest.approx(_sonrm_reference(h - h.mean(0), conn, q, 0.01), rel=1e-6)


def test_balanced_reconstruction_rewards_embeddings_that_match_the_graph():
    from sthisto.module._losses import balanced_reconstruction_loss

    xy, conn = _grid()
    ei = torch.tensor(edge_index(conn))
    smooth = torch.tensor(np.hstack([np.cos(xy / 2), np.sin(xy / 2)]), dtype=torch.float32)  # neighbours alike
    noise = torch.randn(len(xy), 4, generator=torch.Generator().manual_seed(0))
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731 - same negatives for both
    good = balanced_reconstruction_loss(smooth, ei, generator=gen()).item()
    bad = balanced_reconstruction_loss(noise, ei, generator=gen()).item()
    assert good < bad
    # positive embeddings (a sigmoid H) still give a gradient of the size of the loss itself
    h = torch.sigmoid(torch.randn(len(xy), 8, requires_grad=True))
    h.retain_grad()
    loss = balanced_reconstruction_loss(h, ei, generator=gen())
    loss.backward()
    assert 0.3 < loss.item() < 1.5 and h.grad.abs().sum() > 1e-2
    # reproducible for a seeded generator
    assert balanced_reconstruction_loss(noise, ei, generator=gen()).item() == bad


def test_drop_edges_keeps_the_graph_symmetric_and_drops_the_asked_fraction():
    from sthisto.module import drop_edges

    _, conn = _grid(n=400)
    ei = torch.tensor(edge_index(conn))
    out = drop_edges(ei, 0.3, torch.Generator().manual_seed(0))
    pairs = set(map(tuple, out.T.tolist()))
    assert all((j, i) in pairs for i, j in pairs)  # both directions kept or dropped together
    assert pairs <= set(map(tuple, ei.T.tolist()))
    assert out.shape[1] / ei.shape[1] == pytest.approx(0.7, abs=0.05)
    assert drop_edges(ei, 0.0) is ei
