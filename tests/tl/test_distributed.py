"""Data-parallel training: 2 CPU processes (gloo) equal one process taking the same global steps."""

from __future__ import annotations

import socket

import numpy as np

import sthisto as st
from sthisto.tl._distributed import rank_seed, schedule

from ._model_data import FAST, model_sections

# deterministic given the batches: no dropout / DropEdge, exact (dense) reconstruction
KW = {**FAST, "epochs": 3, "batch_size": 30, "dropout": 0.0, "edge_dropout": 0.0, "use_go": False,
      "seed": 5}
WORLD = 2


def _genes():
    return list(model_sections((0,))[0].var_names[:15])


def _worker(rank: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        model = st.tl.fit(model_sections((0, 1)), genes=_genes(), **KW)
        (test,) = model_sections((2,))
        model.save(f"{out}/model_{rank}")  # only rank 0 writes
        state = {k: v.detach().numpy() for k, v in model.module.members[0].state_dict().items()}
        np.savez(f"{out}/rank{rank}.npz", pred=model.predict(test), **state)
        whole = st.tl.fit(model_sections((0, 1)), genes=_genes(), **{**KW, "batch_size": None})  # sections split
        state = {k: v.detach().numpy() for k, v in whole.module.members[0].state_dict().items()}
        np.savez(f"{out}/whole{rank}.npz", **state)
        torch.distributed.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reference(batch_size=KW["batch_size"]):
    """One process, the same global steps: each step's loss is the mean over its WORLD items (blocks or sections)."""
    import torch

    from sthisto._device import seed_everything
    from sthisto.tl._config import resolve_config
    from sthisto.tl._fit import member_seeds
    from sthisto.tl._model import build_member
    from sthisto.tl._preprocessing import Preprocessing
    from sthisto.tl._train import training_items

    train = model_sections((0, 1))
    cfg = resolve_config(**{k: v for k, v in {**KW, "batch_size": batch_size}.items()
                            if k not in ("seed", "progress", "n_top_genes")})
    prep = Preprocessing.fit(train, modalities=("deep", "morphology", "topology"), genes=_genes(), layer=None,
                             feature_clip=cfg.feature_clip, standardize_targets=cfg.standardize_targets)
    sections = [prep.section(a, targets=True, rings=batch_size is None) for a in train]
    (member_seed,) = member_seeds(KW["seed"], 1)
    seed_everything(member_seed)
    member = build_member(cfg, prep.feature_dims, prep.modalities, len(prep.genes))
    opt = torch.optim.AdamW(member.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    items = training_items(sections, batch_size=cfg.batch_size, hops=2, rings=True, device="cpu")
    order = np.random.default_rng(member_seed)
    member.train()
    for _ in range(cfg.epochs):
        for step in schedule(order.permutation(len(items)), WORLD):
            opt.zero_grad()
            losses = []
            for i in step:
                item = items[i]
                xs, ei, rings, target, n_core = item if isinstance(item, tuple) else item.tensors("cpu")
                losses.append(member.loss(xs, ei, target, rings, n_core=n_core)[0])
            (sum(losses) / WORLD).backward()
            opt.step()
    return member.eval(), len(items)


def test_schedule_pads_like_distributed_sampler():
    assert schedule([4, 2, 0, 1, 3], 2) == [[4, 2], [0, 1], [3, 4]]
    assert schedule([1, 0], 1) == [[1], [0]]
    assert schedule([0], 3) == [[0, 0, 0]]
    assert rank_seed(7, 0) == 7 and rank_seed(7, 1) != rank_seed(7, 2)


def test_two_gloo_processes_equal_one_process_on_the_same_global_batches(tmp_path):
    import torch
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(WORLD)]
    assert (tmp_path / "model_0").is_dir() and not (tmp_path / "model_1").exists()
    np.testing.assert_array_equal(ranks[0]["pred"], ranks[1]["pred"])  # replicas stay identical

    ref, n_items = _reference()
    assert n_items >= 6  # several blocks per section, so the 2 ranks took different blocks
    for name, value in ref.state_dict().items():
        np.testing.assert_allclose(ranks[0][name], value.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    (test,) = model_sections((2,))
    loaded = st.tl.M2TGLGO.load(tmp_path / "model_0")
    np.testing.assert_allclose(loaded.predict(test), ranks[0]["pred"], rtol=1e-5, atol=1e-5)

    # whole sections: the two training sections go to the two ranks, one global step per epoch
    whole = np.load(tmp_path / "whole0.npz")
    ref_whole, n_sections = _reference(batch_size=None)
    assert n_sections == 2
    for name, value in ref_whole.state_dict().items():
        np.testing.assert_allclose(whole[name], value.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_array_equal(whole[name], np.load(tmp_path / "whole1.npz")[name])

    # and one process stepping on single blocks is another model: the test can tell them apart
    single = st.tl.fit(model_sections((0, 1)), genes=_genes(), **KW).module.members[0]
    diffs = [float(torch.max(torch.abs(v - ref.state_dict()[k]))) for k, v in single.state_dict().items()
             if v.is_floating_point()]
    assert max(diffs) > 1e-3


def test_without_a_process_group_there_is_one_process():
    from sthisto.tl._distributed import is_main_process, world

    assert world() == (0, 1) and is_main_process()
