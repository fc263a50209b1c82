"""``sthisto.tl.fit``: train M2TGLGO on one or more sections."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto._docs import doc_params
from sthisto._logging import logger
from sthisto._settings import progress as _progress

from . import _data
from ._model import M2TGLGO, build_module


def _pearson_per_gene(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-gene Pearson correlation (NaN for constant genes)."""
    y = y - y.mean(0)
    p = p - p.mean(0)
    den = np.sqrt((y**2).sum(0) * (p**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (y * p).sum(0) / den, np.nan)


@doc_params
def fit(
    adatas: AnnData | Sequence[AnnData],
    *,
    genes: Sequence[str] | None = None,
    n_top_genes: int = 300,
    layer: str | None = None,
    modalities: Sequence[str] = ("deep", "morphology", "topology"),
    hidden_dims: Sequence[int] = (256, 512),
    gamma: float = 0.6,
    n_quantiles: int = 4,
    epsilon: float = 0.01,
    loss_weights: Mapping[str, float] | None = None,
    use_within: bool = True,
    use_inter: bool = True,
    use_ranking: bool = True,
    use_recon: bool = True,
    use_go: bool = True,
    heads: int = 1,
    epochs: int = 500,
    lr: float = 1e-4,
    weight_decay: float = 1e-2,
    dense_recon_max_spots: int = 10_000,
    device: str | None = None,
    n_jobs: int | None = None,
    seed: int | None = 0,
    val_adata: AnnData | None = None,
    early_stopping: bool = False,
    patience: int = 50,
    progress: bool = True,
) -> M2TGLGO:
    """Train M2TGLGO (multi-modal topology-embedded graph learning with GO knowledge).

    One optimisation step per training section (AdamW), sections visited in a seeded
    random order each epoch. Loss = ``w_gene·MSE + w_ranking·SONRM + w_recon·L_recon``.
    Feature standardisation is learned on the training sections only and stored in the
    model, so :func:`sthisto.tl.predict` applies the same scaling to new sections.

    Parameters
    ----------
    adatas
        One training section or a list of them. Each needs the modality blocks in
        ``obsm`` (``sthisto.pp.image_features`` / ``sthisto.pp.nuclei_features``), the spot
        graph ``obsp['spatial_connectivities']`` (``sthisto.pp.spatial_graph``) and counts
        in ``X`` or ``layer``. With ``use_go``, one section needs
        ``varp['sthisto_go_connectivities']`` (``sthisto.pp.gene_ontology_graph``) and
        ``varm['sthisto_gene2vec']`` (``sthisto.pp.gene_embeddings``).
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
    hidden_dims
        Widths of the MMGE layers; the last is the width of the spot embedding H.
    gamma
        Weight of the within-modal embedding in ``H_m = γ H^WI + (1 − γ) H^IT``.
    n_quantiles
        Number of quantile levels of the ranking loss (4 → 0.25, 0.5, 0.75, 1).
    epsilon
        Ranking margin ε.
    loss_weights
        Weights of the ``"gene"``, ``"ranking"`` and ``"recon"`` losses (default 1 each).
    use_within, use_inter
        Keep the within-modal GATs / the inter-modal attention (ablation switches).
    use_ranking, use_recon
        Keep the SONRM ranking loss / the adjacency reconstruction loss.
    use_go
        Build the gene matrix P with a GAT over the GO gene graph; ``False`` learns P.
    heads
        GAT attention heads (averaged).
    epochs
        Passes over the training sections.
    lr, weight_decay
        AdamW learning rate and weight decay.
    dense_recon_max_spots
        Above this many spots in a section, the reconstruction loss samples pairs.
    {device}
    n_jobs
        Torch CPU threads while training (``None``: ``sthisto.settings.n_jobs``, 1 by
        default; ``-1``: all cores). More threads pay off only for large sections on an
        otherwise idle machine.
    {seed}
    val_adata
        Optional validation section: its mean per-gene PCC is recorded every epoch.
    early_stopping
        Stop when the validation PCC has not improved for ``patience`` epochs and
        restore the best weights (needs ``val_adata``).
    patience
        Epochs without improvement before stopping.
    progress
        Show a progress bar (also governed by ``sthisto.settings``).

    Returns
    -------
    The fitted :class:`sthisto.tl.M2TGLGO` model; ``model.history`` has one row per epoch:
    the mean ``loss`` and its unweighted components ``gene``, ``ranking``, ``recon`` over
    the training sections, ``time_s`` (wall time of the training steps) and ``val_pcc``.
    """
    import torch

    from sthisto._device import resolve_device, seed_everything, torch_threads

    if isinstance(adatas, AnnData):
        adatas = [adatas]
    adatas = list(adatas)
    if not adatas:
        raise ValueError("fit needs at least one training section")
    modalities = list(modalities)
    if not modalities:
        raise ValueError("modalities must name at least one obsm feature block")
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities contains duplicates: {modalities}")
    if not (use_within or use_inter):
        raise ValueError("at least one of use_within and use_inter must be True")
    if early_stopping and val_adata is None:
        raise ValueError("early_stopping=True needs val_adata")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    hidden_dims = [int(h) for h in hidden_dims]

    # --- data ---------------------------------------------------------------
    feats = []
    for i, a in enumerate(adatas):
        _data.check_section(a, f"training section {i}")
        feats.append(_data.read_features(a, modalities, f"training section {i}"))
    dims = {m: feats[0][m].shape[1] for m in modalities}
    for i, f in enumerate(feats[1:], start=1):
        _data.check_dims(f, dims, f"training section {i}")
    if genes is None:
        genes = _data.default_genes(adatas, n_top_genes, layer)
    genes = list(dict.fromkeys(genes))
    if not genes:
        raise ValueError("genes is empty")
    gene_emb = gene_ei = None
    if use_go:  # before the per-section gene check, so a gene missing from the GO graph says so
        gene_emb, gene_ei, src = _data.gene_prior(adatas, genes)
        logger.info("GO gene graph and embeddings read from training section %d", src)
    for i, a in enumerate(adatas):
        _data.check_genes(a, genes, f"training section {i}")
    scalers = _data.fit_scalers(feats)
    sections = [
        _data.section_data(a, modalities=modalities, scalers=scalers, features=f, genes=genes,
                           layer=layer, rings=use_ranking)
        for a, f in zip(adatas, feats, strict=True)
    ]
    val = None
    if val_adata is not None:
        _data.check_section(val_adata, "val_adata")
        vf = _data.read_features(val_adata, modalities, "val_adata")
        _data.check_dims(vf, dims, "val_adata")
        _data.check_genes(val_adata, genes, "val_adata")
        val = _data.section_data(val_adata, modalities=modalities, scalers=scalers, features=vf,
                                 genes=genes, layer=layer)

    # --- model --------------------------------------------------------------
    dev = resolve_device(device)
    seed = seed_everything(seed)
    init_params = {
        "hidden_dims": hidden_dims,
        "gamma": float(gamma),
        "n_quantiles": int(n_quantiles),
        "epsilon": float(epsilon),
        "loss_weights": dict(loss_weights or {}),
        "use_within": bool(use_within),
        "use_inter": bool(use_inter),
        "use_ranking": bool(use_ranking),
        "use_recon": bool(use_recon),
        "use_go": bool(use_go),
        "heads": int(heads),
        "epochs": int(epochs),
        "lr": float(lr),
        "weight_decay": float(weight_decay),
        "dense_recon_max_spots": int(dense_recon_max_spots),
        "seed": int(seed),
        "layer": layer,
        "n_train_sections": len(adatas),
    }
    module = build_module(init_params, dims, modalities, len(genes),
                          gene_embeddings=gene_emb, gene_edge_index=gene_ei).to(dev)
    model = M2TGLGO(module, init_params=init_params, genes=genes, modalities=modalities,
                    feature_dims=dims, scalers=scalers)
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator(device=dev).manual_seed(seed)
    order_rng = np.random.default_rng(seed)
    batches = [s.tensors(dev) for s in sections]

    # --- train --------------------------------------------------------------
    epoch_iter = range(1, epochs + 1)
    if progress:
        epoch_iter = _progress(epoch_iter, desc="M2TGLGO", total=epochs)
    with torch_threads(n_jobs):
        rows = _train(module, model, opt, batches, epoch_iter, gen=gen, order_rng=order_rng, val=val,
                      val_adata=val_adata, early_stopping=early_stopping, patience=patience)
    module.eval()
    model.history = pd.DataFrame(rows)
    return model


def _train(module, model, opt, batches, epoch_iter, *, gen, order_rng, val, val_adata, early_stopping, patience):
    """Run the epochs; return the history rows (restores the best state with early stopping)."""
    import torch

    rows, best, best_state, stale = [], -np.inf, None, 0
    for epoch in epoch_iter:
        t_epoch = time.perf_counter()
        module.train()
        sums: dict[str, float] = {}
        for k in order_rng.permutation(len(batches)):
            xs, ei, rings, target = batches[k]
            opt.zero_grad(set_to_none=True)
            total, parts = module.loss(xs, ei, target, rings, generator=gen)
            if not torch.isfinite(total):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}: {parts}; lower lr")
            total.backward()
            opt.step()
            parts["loss"] = float(total.detach())
            for name, v in parts.items():
                sums[name] = sums.get(name, 0.0) + v / len(batches)
        row = {"epoch": epoch, **sums, "time_s": time.perf_counter() - t_epoch}
        if val is not None:
            pcc = _pearson_per_gene(val.target, model.predict(val_adata, batch=val))
            row["val_pcc"] = float(np.nanmean(pcc)) if np.isfinite(pcc).any() else np.nan
            if row["val_pcc"] > best:
                best, stale = row["val_pcc"], 0
                if early_stopping:
                    best_state = {n: t.detach().clone() for n, t in module.state_dict().items()}
            else:
                stale += 1
        rows.append(row)
        if hasattr(epoch_iter, "set_postfix"):
            epoch_iter.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k != "epoch"})
        if early_stopping and stale >= patience:
            logger.info("early stopping at epoch %d (best val PCC %.4f)", epoch, best)
            break
    if early_stopping and best_state is not None:
        module.load_state_dict(best_state)
    return rows
