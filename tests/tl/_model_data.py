"""Model inputs on synthetic sections: features from the planted latents, spot graph, GO prior.

The image-feature and GO helpers (pp) are tested on their own; here features are simple
functions of the planted per-spot latents plus noise, so model tests do not depend on them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

import sthisto as st

_MIX = np.random.default_rng(123)
DEEP_W = _MIX.normal(size=(3, 24))  # same "extractor" for every section
MORPH_W = _MIX.normal(size=(3, 6))


def add_model_inputs(adata, *, seed: int = 0, noise: float = 0.3, go: bool = True):
    """Write obsm deep/morphology/topology, the spot graph and (optionally) a GO prior."""
    rng = np.random.default_rng(seed + 1000)
    z = adata.uns["sthisto_synthetic"]["latents"].to_numpy()
    n = adata.n_obs
    adata.obsm["sthisto_deep"] = np.tanh(z @ DEEP_W) + noise * rng.normal(size=(n, 24))
    adata.obsm["sthisto_morphology"] = pd.DataFrame(
        z @ MORPH_W + noise * rng.normal(size=(n, 6)),
        index=adata.obs_names, columns=[f"m{i}" for i in range(6)],
    )
    adata.obsm["sthisto_topology"] = pd.DataFrame(
        np.column_stack([-z[:, 0], z[:, 0] ** 2, rng.normal(size=n)]) + noise * rng.normal(size=(n, 3)),
        index=adata.obs_names, columns=["mean_d", "max_d", "min_d"],
    )
    st.pp.spatial_graph(adata)
    if go:
        add_go_prior(adata)
    return adata


def add_go_prior(adata, *, dim: int = 16, density: float = 0.1, seed: int = 7):
    """Random symmetric 0/1 gene graph with self loops and random float32 gene embeddings."""
    rng = np.random.default_rng(seed)
    c = adata.n_vars
    a = sp.random(c, c, density=density, random_state=seed, data_rvs=np.ones)
    a = ((a + a.T + sp.identity(c)) > 0).astype(np.float32)
    adata.varp["sthisto_go_connectivities"] = sp.csr_matrix(a)
    adata.varm["sthisto_gene2vec"] = rng.normal(size=(c, dim)).astype(np.float32)
    return adata


_CACHE: dict = {}


def model_sections(seeds=(0, 1, 2), *, n_spots: int = 100, n_genes: int = 50, go: bool = True):
    """Fresh copies of synthetic sections with model inputs (built once per process)."""
    out = []
    for s in seeds:
        key = (s, n_spots, n_genes, go)
        if key not in _CACHE:
            _CACHE[key] = add_model_inputs(
                st.datasets.synthetic(n_spots=n_spots, n_genes=n_genes, seed=s), seed=s, go=go
            )
        out.append(_CACHE[key].copy())
    return out


# small, fixed-epoch, single-member fits that still exercise every loss term
FAST = {"hidden_dims": (16, 32), "epochs": 3, "lr": 3e-3, "n_top_genes": 20, "progress": False,
        "epoch_selection": "fixed", "n_ensemble": 1, "loss_weights": {"ranking": 1.0, "recon": 1.0}}
