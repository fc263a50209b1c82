import pytest
import torch

from sthisto.module import MMGE, InterModal, MMGELayer, WithinModal, modality_scores


@pytest.fixture
def graph():
    torch.manual_seed(0)
    n = 30
    src = torch.arange(n)
    ei = torch.cat([torch.stack([src, (src + 1) % n]), torch.stack([(src + 1) % n, src])], 1)
    xs = [torch.randn(n, 5), torch.randn(n, 3), torch.randn(n, 7)]
    return xs, ei


def test_modality_scores_are_scaled_mean_cosines():
    a = torch.randn(40, 6)
    s = modality_scores([a, a, -a, 1e6 * a])  # scale-free: no overflow from large features
    assert s.shape == (4, 4)
    assert torch.allclose(s[0, 1], torch.tensor(1.0))
    assert torch.allclose(s[0, 2], torch.tensor(-1.0))
    assert torch.allclose(s[0, 3], torch.tensor(1.0))
    assert s.abs().max() <= 1 + 1e-6


def test_inter_modal_attention_rows_sum_to_one(graph):
    xs, _ = graph
    layer = InterModal([5, 3, 7], 8)
    out, beta = layer(xs)
    assert beta.shape == (3, 3)
    assert torch.allclose(beta.sum(1), torch.ones(3))
    projected = [torch.relu(q(x)) for q, x in zip(layer.proj, xs, strict=True)]
    manual = sum(beta[0, k] * projected[k] for k in range(3))
    assert torch.allclose(out[0], manual, atol=1e-6)


def test_within_modal_uses_the_graph(graph):
    xs, ei = graph
    layer = WithinModal(5, 4)
    a = layer(xs[0], ei)
    b = layer(xs[0], ei[:, :10])
    assert a.shape == (30, 4)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("gamma", [0.0, 0.6, 1.0])
def test_gamma_mixes_within_and_inter(graph, gamma):
    xs, ei = graph
    layer = MMGELayer([5, 3, 7], 8, gamma=gamma)
    out = layer(xs, ei)
    wi = [g(x, ei) for g, x in zip(layer.within, xs, strict=True)]
    it = layer.inter(xs)[0]
    for m in range(3):
        assert torch.allclose(out[m], gamma * wi[m] + (1 - gamma) * it[m], atol=1e-6)


def test_switches_remove_exactly_their_module(graph):
    xs, ei = graph
    no_within = MMGELayer([5, 3, 7], 8, gamma=0.6, use_within=False)
    assert no_within.within is None and no_within.inter is not None
    assert not any("gat" in n for n, _ in no_within.named_parameters())
    no_inter = MMGELayer([5, 3, 7], 8, gamma=0.6, use_inter=False)
    assert no_inter.inter is None
    assert not any("proj" in n for n, _ in no_inter.named_parameters())
    assert torch.allclose(no_within(xs, ei)[1], no_within.inter(xs)[0][1])
    with pytest.raises(ValueError, match="use_within"):
        MMGELayer([5], 8, gamma=0.6, use_within=False, use_inter=False)
    with pytest.raises(ValueError, match="gamma"):
        MMGELayer([5], 8, gamma=1.5)


def test_mmge_two_layers_and_sigmoid_fusion(graph):
    xs, ei = graph
    enc = MMGE([5, 3, 7], (8, 12), gamma=0.6)
    h = enc(xs, ei)
    assert h.shape == (30, 12)
    assert (h > 0).all() and (h < 1).all()
    assert len(enc.layers) == 2
    assert enc.fusion.in_features == 3 * 12
    with pytest.raises(ValueError):
        MMGE([], (8,), gamma=0.6)
