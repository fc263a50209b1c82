"""``sthisto.pp.image_features``: per-spot image features from an :class:`Extractor`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._errors import InputError
from sthisto._logging import logger
from sthisto._region import Region
from sthisto._settings import progress, settings
from sthisto._utils import Outputs, copy_or_self
from sthisto._validate import affordable, has_spots, integer, key_name, one_of, unique_obs_names

from ._extractor import Extractor, as_extractor
from ._parallel import check_client, map_tiles, runner, tile_input, window_name
from ._patches import patch_geometry, patch_tiles, tile_patches

TTA = {None: 1, "flip": 3, "rot90": 4, "d4": 8}
TILE_PX = 4096  # image pixels of the tiles patches are cut from (one tile is read at a time)


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


class PatchFeatures:
    """The extractor's batch function with test-time augmentation: uint8 patches -> float32 features.

    Picklable when the extractor's function is, so a dask cluster receives it once per worker.
    """

    def __init__(self, prepared, model: str, tta: str | None) -> None:
        self.prepared, self.model, self.tta = prepared, model, tta

    def _run(self, images: np.ndarray) -> np.ndarray:
        out = np.asarray(self.prepared(images), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(images):
            raise ValueError(f"the extractor {self.model!r} returned shape {out.shape} for {len(images)} "
                             "patches; it must return (batch, n_features).")
        return out

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Mean features over the TTA views of a ``(B, P, P, 3)`` batch."""
        views = _views(images, self.tta)
        out = self._run(views[0])
        for v in views[1:]:
            out = out + self._run(v)
        return out / len(views)


def tile_features(tile, window, centres: np.ndarray, size: float, patch_px: int, batch_size: int,
                  features: PatchFeatures) -> tuple[np.ndarray, np.ndarray]:
    """Features of the spots of one image tile, in batches (a worker's job).

    ``tile.read()`` gives the pixels of ``window``; only the features are kept, batch by
    batch, so memory is bounded by the tile and one batch.

    Returns
    -------
    ``(features (k, D) float32, border (k,) bool)`` in the order of ``centres``.
    """
    pixels = tile.read()
    feats, border = [], []
    for start in range(0, len(centres), batch_size):
        images, flags = tile_patches(pixels, window, centres[start:start + batch_size], size, patch_px)
        out = features(images)
        if feats and out.shape[1] != feats[0].shape[1]:
            raise ValueError(f"model returned {out.shape[1]} features for one batch and {feats[0].shape[1]} "
                             "for another.")
        feats.append(out)
        border.append(flags)
    return np.concatenate(feats), np.concatenate(border)


@doc_params
def image_features(
    adata: AnnData,
    *,
    model: Extractor | Any = "resnet50",
    patch_um: float | None = None,
    patch_px: int = 224,
    batch_size: int = 64,
    tta: str | None = None,
    n_pcs: int | None = None,
    seed: int | None = None,
    library_id: str | None = None,
    img_key: str | None = None,
    spatial_key: str = K.SPATIAL_KEY,
    key_added: str | None = None,
    client: Any = None,
    copy: bool = False,
    **options: Any,
) -> AnnData | None:
    """Extract image features per spot from a patch centred on it.

    Patches come from :func:`sthisto.pp.patches` (``patch_um`` microns, the spot diameter
    by default, resampled to ``patch_px``; border patches reflect-padded and flagged) and
    are processed in streaming batches, reading the image one tile of 4096 px at a time;
    with a ``client`` the tiles run on a dask cluster, each worker reading its own tile.

    Parameters
    ----------
    {adata}
    model
        The feature extractor: an :class:`~sthisto.pp.Extractor`
        (:class:`~sthisto.pp.TextureExtractor`, :class:`~sthisto.pp.DeepExtractor` or your
        own); ``"texture"`` (weights-free colour/texture statistics); or what
        :class:`~sthisto.pp.DeepExtractor` accepts as ``model`` — ``"resnet18"``/``"resnet50"``,
        a torchvision or timm name, a module file, an :class:`torch.nn.Module` or a tensor
        callable.
    patch_um
        Patch side in microns; ``None`` uses the spot diameter.
    patch_px
        Patch side in pixels fed to the model.
    batch_size
        Patches per forward pass.
    tta
        Test-time augmentation averaged over views: ``None``, ``"flip"`` (identity,
        horizontal, vertical), ``"rot90"`` (four rotations) or ``"d4"`` (all eight).
    n_pcs
        Also store the first ``n_pcs`` principal components of the features.
    {seed} (Also seeds the random initialisation of a deep model without weights.)
    {library_id}
    img_key
        Image to cut patches from; ``None`` prefers full resolution, else ``hires``.
    {spatial_key}
    key_added
        ``obsm`` key; ``None`` uses the extractor's modality key
        (:attr:`~sthisto.pp.Extractor.key_added`): ``"sthisto_texture"`` for the texture
        extractor, ``"sthisto_deep"`` for a deep model — the keys :func:`sthisto.tl.fit`
        reads for the modalities ``"texture"`` and ``"deep"``.
    {client} The extractor is sent to each worker once (a deep model runs on the workers'
        device).
    {copy}
    **options
        With a model name, path, module or callable: the options of
        :class:`~sthisto.pp.DeepExtractor` — ``weights`` (``"default"``), ``device``
        (``None``: ``sthisto.settings.device``), ``amp`` (``False``) and ``normalize``
        (``True``). Refused for ``"texture"`` and for an extractor instance.

    Returns
    -------
    {returns_copy} Fields written:

    - ``obsm['{{key_added}}']`` — float32 features (spots × D); a DataFrame with named
      columns when the extractor names them (texture).
    - ``obsm['{{key_added}}_pca']`` — principal components, when ``n_pcs`` is given.
    - ``obs['{{key_added}}_border']`` — ``True`` where the patch was reflect-padded.
    - ``uns['{{key_added}}']['params']`` — model, weights, patch geometry, device, TTA.
    """
    adata = copy_or_self(adata, copy)
    extractor = as_extractor(model, **options)
    key = extractor.key_added if key_added is None else key_name(key_added)
    tta = one_of(tta, "tta", tuple(TTA))
    patch_px = integer(patch_px, "patch_px", minimum=8, fix="give the side of the patches fed to the model, e.g. 224")
    batch_size = integer(batch_size, "batch_size", minimum=1, fix="give the number of patches per forward pass, e.g. 64")
    affordable(batch_size * patch_px**2 * 3 * 9, f"a batch of {batch_size} patches of {patch_px}×{patch_px} px",
               fix="lower batch_size or patch_px")  # uint8 patches, their float32 copy, one view at a time
    has_spots(adata)
    columns = extractor.columns()
    if n_pcs is not None:
        most = adata.n_obs if columns is None else min(adata.n_obs, len(columns))
        n_pcs = integer(n_pcs, "n_pcs", minimum=1, maximum=most, fix="at most min(n_spots, n_features) principal "
                        "components exist")
    if columns is not None:
        unique_obs_names(adata)  # the features are a DataFrame indexed by obs_names
    seed = settings.resolve_seed(seed)
    geometry = patch_geometry(
        adata, patch_um=patch_um, library_id=library_id, img_key=img_key, spatial_key=spatial_key
    )
    client = check_client(client)
    prepared = extractor.prepare(seed=seed)
    info = {"model": extractor.name, **extractor.record()}
    features = PatchFeatures(prepared, info["model"], tta)
    level = geometry.at_resolution(int(patch_px))
    tiles = patch_tiles(level, tile_px=TILE_PX)
    region = Region(level.image, source=level.source)

    feats: np.ndarray | None = None
    border = np.zeros(adata.n_obs, dtype=bool)
    with runner(client=client, n_jobs=1, n_tasks=len(tiles)) as run:
        shared = run.share(features)

        def task(tile):
            return (tile_input(region, tile.window, run), tile.window, level.centres[tile.index], level.size,
                    int(patch_px), int(batch_size), shared)

        results = map_tiles(tile_features, [(lambda t=t: task(t)) for t in tiles], executor=run,
                            max_in_flight=2 * run.slots,
                            names=lambda i: window_name("patch tile", i, len(tiles), tiles[i].window))
        for (out, flags), tile in zip(progress(results, desc=f"{info['model']} features", total=len(tiles)),
                                      tiles, strict=True):
            if feats is None:
                feats = np.zeros((adata.n_obs, out.shape[1]), dtype=np.float32)
            elif out.shape[1] != feats.shape[1]:
                raise ValueError(f"model returned {out.shape[1]} features for one batch and {feats.shape[1]} "
                                 "for another.")
            feats[tile.index] = out
            border[tile.index] = flags
    if feats is None:
        raise ValueError("adata has no spots.")
    if not np.isfinite(feats).all():
        raise ValueError(f"model {info['model']!r} produced NaN or infinite features.")
    if border.any():
        logger.info("%d of %d patches cross the image border (reflect-padded)", border.sum(), adata.n_obs)

    data = feats if columns is None else pd.DataFrame(feats, index=adata.obs_names, columns=columns)
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
    out = Outputs()
    out.add("obsm", key, data)
    out.add("obs", f"{key}_border", border)
    result: dict[str, Any] = {"params": params}
    if n_pcs is not None:
        scores, result["pca"] = _pca(feats, n_pcs, seed)
        out.add("obsm", f"{key}_pca", scores)
    out.add("uns", key, result)
    out.write(adata)
    return adata if copy else None


def _pca(feats: np.ndarray, n_pcs: int, seed: int) -> tuple[np.ndarray, dict]:
    """Principal components of ``feats`` and their explained variance ratio (nothing written)."""
    from sklearn.decomposition import PCA

    limit = min(feats.shape)
    if not 1 <= n_pcs <= limit:
        raise InputError(f"n_pcs must be between 1 and min(n_spots, n_features) = {limit}, got {n_pcs}.")
    pca = PCA(n_components=n_pcs, svd_solver="full", random_state=seed)
    scores = pca.fit_transform(feats).astype(np.float32)
    return scores, {"variance_ratio": pca.explained_variance_ratio_.astype(np.float64)}
