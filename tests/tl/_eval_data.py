"""Simple per-spot features for evaluation tests: planted latents plus noise, in obsm."""

from __future__ import annotations

import numpy as np

_W = np.random.default_rng(321).normal(size=(3, 8))  # same "extractor" for every section


def add_features(adata, *, seed: int = 0, noise: float = 0.3, key: str = "sthisto_deep"):
    """Write ``obsm[key]`` = tanh(latents @ W) + noise, and return ``adata``."""
    rng = np.random.default_rng(seed + 500)
    z = adata.uns["sthisto_synthetic"]["latents"].to_numpy()
    adata.obsm[key] = np.tanh(z @ _W) + noise * rng.normal(size=(adata.n_obs, _W.shape[1]))
    return adata


def sections_with_features(sections):
    for i, a in enumerate(sections):
        add_features(a, seed=i)
    return sections
