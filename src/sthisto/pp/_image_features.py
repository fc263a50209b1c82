"""Per-spot image features: a CNN/ViT (deep modality X_D) or weights-free colour/texture."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._logging import logger
from sthisto._settings import progress, settings
from sthisto._utils import copy_or_self, save_data

from ._patches import iter_patches, patch_geometry

TTA = {None: 1, "flip": 3, "rot90": 4, "d4": 8}


def _views(images: np.ndarray, tta: str | None) -> list[np.ndarray]:
    """Test-time augmentation views of a (B, H, W, 3) batch (the original first)."""
    if tta not in TTA:
        raise ValueError(f"tta must be one of {list(TTA)}, got {tta!r}")
    if tta is None:
        return [images]
    if tta == "flip":
        return [images, images[:, :, ::-1], images[:, ::-1]]
    rots = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
    return rots if tta == "rot90" else rots + [r[:, :, ::-1] for r in rots]


def _as_features(out: Any, n: int, name: str) -> np.ndarray:
    import torch

    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    if isinstance(out, torch.Tensor):
        out = out.detach().float().cpu().numpy()
    out = np.asarray(out, dtype=np.float32)
    while out.ndim > 2 and out.shape[-1] == 1:
        out = out[..., 0]
    if out.ndim != 2 or out.shape[0] != n:
        raise ValueError(
            f"model {name!r} returned an array of shape {out.shape} for a batch of {n} patches; "
            "it must return (batch, n_features) — pool spatial maps (e.g. global average) first."
        )
    return out


def _deep_runner(model, weights, seed: int, device, amp: bool, normalize: bool) -> tuple[Callable, dict]:
    import torch

    from sthisto._device import resolve_device

    from ._extractors import resolve_extractor

    dev = resolve_device(device)
    ext = resolve_extractor(model, weights, seed=seed)
    if ext.module is not None:
        ext.module.eval().to(dev)
    use_amp = bool(amp) and dev.type == "cuda"
    if amp and not use_amp:
        logger.warning("amp=True only applies on CUDA; running in float32 on %s.", dev)
    mean = std = None
    if normalize and ext.mean is not None:
        mean = torch.tensor(ext.mean, device=dev).view(1, 3, 1, 1)
        std = torch.tensor(ext.std, device=dev).view(1, 3, 1, 1)

    def run(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(dev).permute(0, 3, 1, 2).float().div_(255.0)
        if mean is not None:
            x = (x - mean) / std
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            out = ext.fn(x)
        return _as_features(out, len(images), ext.name)

    info = {"model": ext.name, "weights": ext.weights, "device": str(dev), "amp": use_amp,
            "normalize": "none" if mean is None else "mean/std", "mean": list(ext.mean or ()), "std": list(ext.std or ())}
    return run, info


@doc_params
def image_features(
    adata: AnnData,
    *,
    model: Any = "resnet50",
    weights: str | None = "default",
    patch_um: float | None = None,
    patch_px: int = 224,
    batch_size: int = 64,
    device: str | None = None,
    tta: str | None = None,
    n_pcs: int | None = None,
    amp: bool = False,
    normalize: bool = True,
    seed: int | None = None,
    library_id: str | None = None,
    img_key: str | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Extract image features per spot from a patch centred on it.

    Patches come from :func:`sthisto.pp.patches` (``patch_um`` microns, the spot diameter
    by default, resampled to ``patch_px``; border patches reflect-padded and flagged) and
    are processed in streaming batches, reading the image tile by tile.

    Parameters
    ----------
    {adata}
    model
        ``"texture"`` (weights-free colour/texture statistics, see
        :mod:`sthisto.pp._texture`); ``"resnet18"``/``"resnet50"`` (built in, torchvision
        layer names); another torchvision name or a timm name incl. ``"hf-hub:..."`` (when
        those packages are installed); a path to a TorchScript or pickled module; an
        :class:`torch.nn.Module`; or any callable mapping a float tensor (B, 3, H, W) to
        features (B, D).
    weights
        ``"default"``: pretrained weights through torch hub's cache (``$TORCH_HOME/hub``)
        or timm/Hugging Face; a path to a state dict; ``None``: seeded random
        initialisation (logged: such features are weak). Modules keep their weights
        unless a path is given.
    patch_um
        Patch side in microns; ``None`` uses the spot diameter.
    patch_px
        Patch side in pixels fed to the model.
    batch_size
        Patches per forward pass.
    {device}
    tta
        Test-time augmentation averaged over views: ``None``, ``"flip"`` (identity,
        horizontal, vertical), ``"rot90"`` (four rotations) or ``"d4"`` (all eight).
    n_pcs
        Also store the first ``n_pcs`` principal components of the features.
    amp
        Float16 autocast on CUDA.
    normalize
        Standardise patches with the model's mean/std (ImageNet for modules/callables).
    {seed}
    {library_id}
    img_key
        Image to cut patches from; ``None`` prefers full resolution, else ``hires``.
    {spatial_key}
    key_added
        ``obsm`` key; ``None`` gives ``"sthisto_deep"``, or ``"sthisto_texture"`` for
        ``model="texture"``.
    {copy}

    Returns
    -------
    {returns_copy} Fields written:

    - ``obsm['{{key_added}}']`` — float32 features (spots × D); a DataFrame with named
      columns for ``model="texture"``.
    - ``obsm['{{key_added}}_pca']`` — principal components, when ``n_pcs`` is given.
    - ``obs['{{key_added}}_border']`` — ``True`` where the patch was reflect-padded.
    - ``uns['{{key_added}}']['params']`` — model, weights, patch geometry, device, TTA.
    """
    adata = copy_or_self(adata, copy)
    is_texture = isinstance(model, str) and model == "texture"
    key = key_added or (K.TEXTURE if is_texture else K.DEEP)
    if tta not in TTA:
        raise ValueError(f"tta must be one of {list(TTA)}, got {tta!r}")
    if int(patch_px) < 8:
        raise ValueError(f"patch_px must be at least 8 pixels, got {patch_px}")
    seed = settings.resolve_seed(seed)
    geometry = patch_geometry(
        adata, patch_um=patch_um, library_id=library_id, img_key=img_key, spatial_key=spatial_key
    )
    if is_texture:
        from ._texture import feature_names, texture_features

        run, info = texture_features, {"model": "texture", "weights": "none", "device": "cpu"}
    else:
        run, info = _deep_runner(model, weights, seed, device, amp, normalize)

    feats: np.ndarray | None = None
    border = np.zeros(adata.n_obs, dtype=bool)
    batches = iter_patches(geometry, patch_px=int(patch_px), batch_size=int(batch_size))
    for batch in progress(batches, desc=f"{info['model']} features", total=math.ceil(adata.n_obs / batch_size)):
        views = _views(batch.images, tta)
        out = run(views[0])
        for v in views[1:]:
            out = out + run(v)
        out = out / len(views)
        if feats is None:
            feats = np.zeros((adata.n_obs, out.shape[1]), dtype=np.float32)
        elif out.shape[1] != feats.shape[1]:
            raise ValueError(f"model returned {out.shape[1]} features for one batch and {feats.shape[1]} for another.")
        feats[batch.index] = out
        border[batch.index] = batch.border
    if feats is None:
        raise ValueError("adata has no spots.")
    if not np.isfinite(feats).all():
        raise ValueError(f"model {info['model']!r} produced NaN or infinite features.")
    if border.any():
        logger.info("%d of %d patches cross the image border (reflect-padded)", border.sum(), adata.n_obs)

    data = pd.DataFrame(feats, index=adata.obs_names, columns=feature_names()) if is_texture else feats
    save_data(adata, attr="obsm", key=key, data=data)
    save_data(adata, attr="obs", key=f"{key}_border", data=border)
    params = {
        **info,
        "patch_um": geometry.size_um,
        "patch_px": int(patch_px),
        "patch_image_px": float(geometry.size),
        "image_scale": float(geometry.scale),
        "microns_per_pixel": float(geometry.microns_per_pixel),
        "tta": "none" if tta is None else tta,
        "n_pcs": 0 if n_pcs is None else int(n_pcs),
        "seed": seed,
        "n_features": int(feats.shape[1]),
        "n_border": int(border.sum()),
    }
    result: dict[str, Any] = {"params": params}
    if n_pcs is not None:
        result["pca"] = _pca(adata, feats, int(n_pcs), seed, f"{key}_pca")
    save_data(adata, attr="uns", key=key, data=result)
    return adata if copy else None


def _pca(adata: AnnData, feats: np.ndarray, n_pcs: int, seed: int, key: str) -> dict:
    from sklearn.decomposition import PCA

    limit = min(feats.shape)
    if not 1 <= n_pcs <= limit:
        raise ValueError(f"n_pcs must be between 1 and min(n_spots, n_features) = {limit}, got {n_pcs}")
    pca = PCA(n_components=n_pcs, svd_solver="full", random_state=seed)
    save_data(adata, attr="obsm", key=key, data=pca.fit_transform(feats).astype(np.float32))
    return {"variance_ratio": pca.explained_variance_ratio_.astype(np.float64)}
