import numpy as np
import pytest
import torch

from sthisto.module import M2TGLGOModule
from sthisto.pp import knn_graph
from sthisto.tl._data import edge_index, padded_rings

ABLATIONS = [
    {},
    {"use_within": False},
    {"use_inter": False},
    {"use_ranking": False},
    {"use_recon": False},
    {"use_go": False},
    {"use_ranking": False, "use_recon": False},
]


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    n, c = 40, 12
    conn, _ = knn_graph(rng.uniform(0, 10, (n, 2)))
    xs = [torch.tensor(rng.normal(size=(n, d)), dtype=torch.float32) for d in (6, 4)]
    target = torch.tensor(rng.uniform(0, 3, (n, c)), dtype=torch.float32)
    i = torch.arange(c)
    gei = torch.cat([torch.stack([i, (i + 1) % c]), torch.stack([(i + 1) % c, i])], 1)
    return {
        "xs": xs, "ei": torch.tensor(edge_index(conn)), "rings": torch.tensor(padded_rings(conn)),
        "target": target, "emb": torch.randn(c, 5), "gei": gei, "c": c,
    }


# every argument of the module, as the paper's model (sthisto.tl.M2TGLGOConfig maps a config onto these)
PAPER = {"hidden_dims": (8, 16), "gamma": 0.6, "heads": 1, "use_within": True, "use_inter": True,
         "dropout": 0.0, "edge_dropout": 0.0, "activation": "sigmoid", "gene_bias": False,
         "ranking_form": "paper", "recon_form": "paper", "n_quantiles": 4, "epsilon": 0.01,
         "dense_recon_max_spots": 10_000}


def _module(batch, use_go=True, use_ranking=True, use_recon=True, loss_weights=None, **kw):
    torch.manual_seed(0)
    go = ({"gene_embeddings": batch["emb"], "gene_edge_index": batch["gei"]} if use_go
          else {"gene_embeddings": None, "gene_edge_index": None})
    weights = {"gene": 1.0, "ranking": float(use_ranking), "recon": float(use_recon), **(loss_weights or {})}
    return M2TGLGOModule([6, 4], batch["c"], **{**PAPER, **kw}, **go, loss_weights=weights)


@pytest.mark.parametrize("switches", ABLATIONS, ids=lambda s: ",".join(s) or "full")
def test_gradients_reach_every_enabled_module(batch, switches):
    module = _module(batch, **switches)
    total, parts = module.loss(batch["xs"], batch["ei"], batch["target"], batch["rings"])
    assert ("ranking" in parts) == switches.get("use_ranking", True)
    assert ("recon" in parts) == switches.get("use_recon", True)
    total.backward()
    groups = {}
    for name, p in module.named_parameters():
        key = ".".join(name.split(".")[:4])
        groups.setdefault(key, []).append(p.grad is not None and p.grad.abs().sum().item() > 0)
    dead = [k for k, ok in groups.items() if not any(ok)]
    assert not dead, f"no gradient reaches {dead}"
    names = [n for n, _ in module.named_parameters()]
    assert any(".within." in n for n in names) == switches.get("use_within", True)
    assert any(".inter." in n for n in names) == switches.get("use_inter", True)
    assert any("gene_head.gat" in n for n in names) == switches.get("use_go", True)
    assert any(n == "gene_head.P" for n in names) == (not switches.get("use_go", True))


def test_every_parameter_gets_a_gradient_in_the_full_model(batch):
    module = _module(batch)
    total, _ = module.loss(batch["xs"], batch["ei"], batch["target"], batch["rings"])
    total.backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing


def test_loss_weights(batch):
    module = _module(batch, loss_weights={"ranking": 0.0, "recon": 2.0})
    total, parts = module.loss(batch["xs"], batch["ei"], batch["target"], batch["rings"])
    assert total.item() == pytest.approx(parts["gene"] + 2 * parts["recon"], rel=1e-5)
    with pytest.raises(ValueError, match="loss_weights"):
        _module(batch, loss_weights={"typo": 1.0})


def test_forward_shapes_and_ranking_needs_rings(batch):
    module = _module(batch)
    h, z = module(batch["xs"], batch["ei"])
    assert h.shape == (40, 16) and z.shape == (40, batch["c"])
    with pytest.raises(ValueError, match="rings"):
        module.loss(batch["xs"], batch["ei"], batch["target"], None)


def test_dropout_and_drop_edge_act_in_training_only(batch):
    module = _module(batch, dropout=0.5, edge_dropout=0.5)
    module.eval()
    z1, z2 = (module(batch["xs"], batch["ei"])[1] for _ in range(2))
    assert torch.equal(z1, z2)  # eval: deterministic
    module.train()
    g = torch.Generator().manual_seed(0)
    a, _ = module.loss(batch["xs"], batch["ei"], batch["target"], batch["rings"], generator=g)
    b, _ = module.loss(batch["xs"], batch["ei"], batch["target"], batch["rings"], generator=g)
    assert a.item() != b.item()  # training: dropout masks and dropped edges differ per step


def test_gene_bias_offsets_every_gene(batch):
    module = _module(batch, gene_bias=True)
    assert module.gene_head.bias.shape == (batch["c"],)
    module.eval()
    z0 = module(batch["xs"], batch["ei"])[1]
    with torch.no_grad():
        module.gene_head.bias += torch.arange(batch["c"], dtype=torch.float32)
    z1 = module(batch["xs"], batch["ei"])[1]
    torch.testing.assert_close(z1 - z0, torch.arange(batch["c"], dtype=torch.float32).expand_as(z0))


def test_ensemble_averages_its_members(batch):
    from sthisto.module import Ensemble

    members = [_module(batch, use_go=False) for _ in range(3)]
    for k, m in enumerate(members):
        torch.manual_seed(k)
        for p in m.parameters():
            torch.nn.init.normal_(p, std=0.1)
    ens = Ensemble(members).eval()
    expected = torch.stack([m.eval()(batch["xs"], batch["ei"])[1] for m in members]).mean(0)
    torch.testing.assert_close(ens(batch["xs"], batch["ei"]), expected)
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])


@pytest.mark.parametrize("forms", [("centred", "balanced"), ("paper", "paper")])
def test_every_loss_form_trains(batch, forms):
    module = _module(batch, ranking_form=forms[0], recon_form=forms[1])
    total, parts = module.loss(batch["xs"], batch["ei"], batch["target"], batch["rings"],
                               generator=torch.Generator().manual_seed(0))
    total.backward()
    assert set(parts) == {"gene", "ranking", "recon"} and np.isfinite(list(parts.values())).all()
    with pytest.raises(ValueError, match="ranking_form"):
        _module(batch, ranking_form="typo")
