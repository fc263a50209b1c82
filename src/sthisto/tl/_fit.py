"""``sthisto.tl.fit``: train M2TGLGO on one or more sections, choosing its epochs by inner validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._logging import logger
from sthisto._settings import progress as _progress
from sthisto._validate import name_list, raw_counts

from . import _data
from ._config import M2TGLGOConfig, resolve_config
from ._distributed import is_main_process
from ._inner import inner_splits
from ._model import M2TGLGO, build_member
from ._preprocessing import Preprocessing
from ._train import train_module


@doc_params
def fit(
    adatas: AnnData | Sequence[AnnData],
    *,
    genes: Sequence[str] | None = None,
    n_top_genes: int = 300,
    layer: str | None = None,
    modalities: Sequence[str] = K.DEFAULT_MODALITIES,
    preset: str = "default",
    config: M2TGLGOConfig | Mapping[str, Any] | None = None,
    val_adata: AnnData | None = None,
    gene_prior: AnnData | None = None,
    neighbors_key: str = K.SPATIAL_NEIGHBORS,
    go_key: str = K.GO,
    embedding_key: str = K.GENE2VEC,
    device: str | None = None,
    n_jobs: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    **settings: Any,
) -> M2TGLGO:
    """Train M2TGLGO (multi-modal topology-embedded graph learning with GO knowledge).

    The recipe (architecture, losses, optimisation) is an :class:`sthisto.tl.M2TGLGOConfig`:
    ``preset="default"`` is sthisto's recipe, ``preset="paper"`` the published model; a
    ``config`` or keyword ``settings`` (any config field, e.g. ``epochs=100``) override it.
    With the default ``epoch_selection="inner"`` the number of epochs is chosen by inner
    validation on the training sections only (leave one training section out; a single
    section is split into two spatial halves); then ``n_ensemble`` models with seeds drawn
    from ``seed`` are trained on all training sections for that many epochs and averaged. Feature and target scalings are learned on the training sections only and
    stored in the model, so :func:`sthisto.tl.predict` applies them to new sections.

    Parameters
    ----------
    adatas
        One training section or a list of them. Each needs the modality blocks in
        ``obsm`` (``sthisto.pp.image_features`` / ``sthisto.pp.nuclei_features``), the spot
        graph ``obsp['{{neighbors_key}}_connectivities']`` (``sthisto.pp.spatial_graph``)
        and raw counts in ``X`` or ``layer``. With ``use_go``, one section (any) needs the
        GO gene graph ``varp['{{go_key}}_connectivities']`` (``sthisto.pp.gene_ontology_graph``)
        and gene embeddings ``varm[embedding_key]`` (``sthisto.pp.gene_embeddings``).
    genes
        Genes to model; default: the ``n_top_genes`` highly variable genes of the
        training sections.
    n_top_genes
        Number of highly variable genes when ``genes`` is ``None``.
    layer
        Layer holding raw counts (``None`` → ``X``). Targets are
        ``log1p(normalize_total(1e4))`` of it.
    modalities
        Modality names (``"deep"``, ``"morphology"``, ``"topology"``, ``"texture"``) or any
        ``obsm`` key; dropping one is the modality ablation.
    preset
        ``"default"`` or ``"paper"`` (see :class:`sthisto.tl.M2TGLGOConfig`).
    config
        An :class:`~sthisto.tl.M2TGLGOConfig`, or a dict of its fields applied to the preset.
    val_adata
        Optional section whose mean per-gene PCC is recorded in the history (``val_pcc``)
        — a monitor only, never a choice, unless ``epoch_selection="fixed"`` and
        ``early_stopping=True``.
    gene_prior
        Where the GO gene graph and gene embeddings are read (``use_go``): any AnnData whose
        ``var_names`` hold the model genes — a section, or a gene-only AnnData — with
        ``varp['{{go_key}}_connectivities']`` and ``varm[embedding_key]``. The GO graph
        belongs to the gene set, not to a section, so compute it once. Default: the first
        training section that holds both.
    neighbors_key, go_key, embedding_key
        Keys of the spot graph, the GO gene graph and the gene embeddings (the
        ``key_added`` of the ``pp`` functions that wrote them).
    {device}
    n_jobs
        Torch CPU threads while training (``None``: ``sthisto.settings.n_jobs``, 1 by
        default; ``-1``: all cores). More threads pay off only for large sections on an
        otherwise idle machine.
    {seed}
    progress
        Show a progress bar (also governed by ``sthisto.settings``).
    **settings
        Fields of :class:`~sthisto.tl.M2TGLGOConfig` (``epochs``, ``hidden_dims``,
        ``loss_weights``, ``use_go``, …); an unknown name raises a ``TypeError``.

    Returns
    -------
    The fitted :class:`sthisto.tl.M2TGLGO`. ``model.history`` has one row per epoch of
    every run (inner-validation runs and ensemble members); ``model.selection`` records
    how many epochs were chosen and the inner-validation curve behind the choice.
    """
    from sthisto._device import resolve_device, seed_everything, torch_threads

    # --- arguments (all checked before any work) ---------------------------
    if isinstance(adatas, AnnData):
        adatas = [adatas]
    adatas = list(adatas)
    if not adatas:
        raise ValueError("fit needs at least one training section")
    cfg = resolve_config(preset, config, **settings)
    modalities = list(name_list(modalities, "modalities"))
    if not modalities:
        raise ValueError("modalities must name at least one obsm feature block")
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities contains duplicates: {modalities}")
    if cfg.early_stopping and val_adata is None:
        raise ValueError("early_stopping=True needs val_adata")
    if cfg.early_stopping and cfg.epoch_selection != "fixed":
        raise ValueError("early_stopping on val_adata needs epoch_selection='fixed' (the default chooses "
                         "epochs by inner validation on the training sections).")
    dev = resolve_device(device)
    seed = seed_everything(seed)

    # --- data ---------------------------------------------------------------
    for i, a in enumerate(adatas):
        _data.check_section(a, f"training section {i}")
        raw_counts(a, layer, where=f"training section {i}")
    if val_adata is not None:
        raw_counts(val_adata, layer, where="val_adata")
    if genes is None:
        genes = _data.default_genes(adatas, n_top_genes, layer)
    genes = list(dict.fromkeys(genes))
    if not genes:
        raise ValueError("genes is empty")
    prior = {}
    if cfg.use_go:  # before the per-section gene check, so a gene missing from the GO graph says so
        sources = adatas if gene_prior is None else [gene_prior]
        emb, ei, src = _data.gene_prior(sources, genes, go_key=go_key, embedding_key=embedding_key)
        prior = {"gene_embeddings": emb, "gene_edge_index": ei}
        logger.info("GO gene graph and embeddings read from %s",
                    "gene_prior" if gene_prior is not None else f"training section {src}")
    prep_kw = {"modalities": modalities, "genes": genes, "layer": layer, "feature_clip": cfg.feature_clip,
               "standardize_targets": cfg.standardize_targets, "neighbors_key": neighbors_key}
    prep = Preprocessing.fit(adatas, **prep_kw)
    rings = "ranking" in cfg.active_loss_weights and cfg.batch_size is None  # else rings per block
    train = [prep.section(a, targets=True, rings=rings, where=f"training section {i}")
             for i, a in enumerate(adatas)]
    val = None if val_adata is None else [prep.section(val_adata, targets=True, where="val_adata")]
    splits = inner_splits(adatas) if cfg.epoch_selection == "inner" else []

    # --- train ----------------------------------------------------------------
    bar = _Progress(progress and is_main_process(), total=cfg.epochs * (len(splits) + cfg.n_ensemble))
    history: list[pd.DataFrame] = []
    with torch_threads(n_jobs):
        selection = _select_epochs(cfg, splits, prep_kw, prior, rings=rings, seed=seed, device=dev,
                                   bar=bar, history=history)
        bar.set_total(cfg.epochs * len(splits) + selection["epochs"] * cfg.n_ensemble)
        members = []
        for k, member_seed in enumerate(member_seeds(seed, cfg.n_ensemble)):
            seed_everything(member_seed)  # the member's initial weights
            member = _new_member(cfg, prep, prior).to(dev)
            bar.phase(f"member {k + 1}/{cfg.n_ensemble}")
            result = train_module(member, train, epochs=selection["epochs"], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay, seed=member_seed, device=dev, val=val,
                                  eval_every=1 if val is not None else cfg.eval_every,
                                  early_stopping=cfg.early_stopping, patience=cfg.patience,
                                  batch_size=cfg.batch_size, on_epoch=bar.step)
            history.append(pd.DataFrame(result.history).assign(run=f"member:{k}"))
            members.append(member)
    bar.close()
    from sthisto.module import Ensemble

    module = Ensemble(members).eval()
    hist = pd.concat(history, ignore_index=True)
    hist = hist[["run", *[c for c in hist.columns if c != "run"]]]
    return M2TGLGO(module, config=cfg, preprocessing=prep, history=hist, selection=selection)


def _select_epochs(cfg: M2TGLGOConfig, splits, prep_kw, prior, *, rings, seed, device, bar, history) -> dict:
    """Run the inner-validation fits and choose the number of epochs (or take ``cfg.epochs``)."""
    if cfg.epoch_selection == "fixed":
        return {"method": "fixed", "epochs": cfg.epochs}
    from sthisto._device import seed_everything

    curves = []
    for i, (fit_secs, val_secs) in enumerate(splits):
        prep = Preprocessing.fit(fit_secs, **prep_kw, where=f"inner split {i}: training section")
        train = [prep.section(a, targets=True, rings=rings, where=f"inner split {i}") for a in fit_secs]
        val = [prep.section(a, targets=True, where=f"inner split {i}: validation") for a in val_secs]
        seed_everything(seed)
        member = _new_member(cfg, prep, prior).to(device)
        bar.phase(f"inner validation {i + 1}/{len(splits)}")
        result = train_module(member, train, epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                              seed=seed, device=device, val=val, eval_every=cfg.eval_every,
                              batch_size=cfg.batch_size, on_epoch=bar.step)
        history.append(pd.DataFrame(result.history).assign(run=f"inner:{i}"))
        curves.append(dict(result.curve))
    epochs = sorted(curves[0])
    mean_curve = {e: float(np.mean([c[e] for c in curves])) for e in epochs}
    chosen = max(epochs, key=lambda e: (mean_curve[e], -e))  # best mean validation PCC, earliest on ties
    logger.info("inner validation chose %d epochs (mean validation PCC %.4f over %d splits)",
                chosen, mean_curve[chosen], len(splits))
    return {"method": "inner", "epochs": int(chosen), "val_pcc": mean_curve[chosen],
            "curve": {str(e): v for e, v in mean_curve.items()},
            "splits": [{"split": i, "best_epoch": max(c, key=c.get), "best_val_pcc": max(c.values())}
                       for i, c in enumerate(curves)]}


def member_seeds(seed: int, n: int) -> list[int]:
    """Seeds of the ``n`` ensemble members of a fit with ``seed``.

    Drawn from :class:`numpy.random.SeedSequence` (``seed``), so fits with different seeds
    share no member (``seed, seed + 1, …`` would make seeds 0 and 1 share two of three).
    """
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


def _new_member(cfg: M2TGLGOConfig, prep: Preprocessing, prior: dict):
    return build_member(cfg, prep.feature_dims, prep.modalities, len(prep.genes), **prior)


class _Progress:
    """One progress bar over every training run of a fit."""

    def __init__(self, enabled: bool, *, total: int) -> None:
        self.bar = _progress(range(total), desc="M2TGLGO", total=total) if enabled else None

    def phase(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description(f"M2TGLGO {name}")

    def step(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in ("loss", "val_pcc")})

    def set_total(self, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
