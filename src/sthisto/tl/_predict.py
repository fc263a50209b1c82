"""``sthisto.tl.predict`` / ``predict_anndata``: apply a fitted M2TGLGO model to a section."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from sthisto import _constants as K
from sthisto._docs import doc_params
from sthisto._logging import logger
from sthisto._utils import Outputs, copy_or_self, detach
from sthisto._validate import key_name, unique_var_names

from ._model import M2TGLGO
from ._stream import stream_batch_size


def _check_model(model) -> None:
    if not isinstance(model, M2TGLGO):
        raise TypeError(
            f"model must be a sthisto.tl.M2TGLGO (from sthisto.tl.fit or M2TGLGO.load), "
            f"got {type(model).__name__}"
        )


def _plain(value):
    """JSON/h5ad-friendly copy of a params dict (None → 'None', tuples → lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return "None" if value is None else value


def _record(model: M2TGLGO, genes) -> dict:
    return {
        "genes": np.asarray(list(genes), dtype=object),
        "modalities": list(model.modalities),
        "params": _plain(model.config.to_dict()),
        "layer": _plain(model.preprocessing.layer),
        "epochs": int(model.selection.get("epochs", 0)),
        "model_version": model.version,
    }


@doc_params
def predict(
    adata: AnnData,
    model: M2TGLGO,
    *,
    key_added: str = K.PRED,
    batch_size: int | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Predict expression of the model's genes on a section with features and a spot graph.

    The section needs the model's modality blocks in ``obsm`` (same widths as in
    training) and ``obsp['spatial_connectivities']``. Predictions are log-normalised
    expression (``log1p(normalize_total(1e4))``). Genes of the model that are absent from
    ``adata.var_names`` are skipped with a warning; for an H&E-only section (no gene
    measurements) use :func:`sthisto.tl.predict_anndata`.

    Parameters
    ----------
    {adata}
    model
        A fitted :class:`sthisto.tl.M2TGLGO`.
    key_added
        Layer and ``uns`` key of the predictions.
    batch_size
        Predict in spatial blocks of at most this many spots, with memory bounded by a
        block (the result equals the whole-section prediction up to float rounding).
        ``None``: the whole section at once up to 50,000 spots, blocks of 16,384 above.
    {copy}

    Returns
    -------
    {returns_copy} Fields written:

    - ``layers['{{key_added}}']`` — float32 predictions for the model's genes, NaN for the others.
    - ``uns['{{key_added}}']`` — ``genes`` predicted, ``modalities``, training ``params``, ``model_version``.
    """
    _check_model(model)
    stream_batch_size(batch_size, 0)  # checked before any work
    adata = copy_or_self(adata, copy)
    key_added = key_name(key_added)
    unique_var_names(adata)
    pos = adata.var_names.get_indexer(model.genes)
    present = pos >= 0
    if not present.any():
        raise KeyError(
            "none of the model genes are in adata.var_names; for an H&E-only section use "
            "sthisto.tl.predict_anndata(adata, model), which returns a new AnnData with var = model genes."
        )
    if not present.all():
        logger.warning(
            "%d of %d model genes are not in adata.var_names and are not written "
            "(use sthisto.tl.predict_anndata to get all of them)",
            int((~present).sum()), len(model.genes),
        )
    z = model.predict(adata, batch_size=batch_size)
    out = np.full(adata.shape, np.nan, dtype=np.float32)
    out[:, pos[present]] = z[:, present]
    genes = [g for g, ok in zip(model.genes, present, strict=True) if ok]
    outputs = Outputs()
    outputs.add("layers", key_added, out)
    outputs.add("uns", key_added, _record(model, genes))
    outputs.write(adata)
    return adata if copy else None


def predict_anndata(adata: AnnData, model: M2TGLGO, *, batch_size: int | None = None) -> AnnData:
    """Predict all model genes on any section (e.g. H&E only) into a new AnnData.

    Parameters
    ----------
    adata
        A section with the model's feature blocks in ``obsm`` and the spot graph in
        ``obsp``; its ``var`` is ignored (it may hold no genes at all).
    model
        A fitted :class:`sthisto.tl.M2TGLGO`.
    batch_size
        As in :func:`predict`.

    Returns
    -------
    A new AnnData with ``obs``, ``obsm``, ``obsp`` and ``uns['spatial']`` of ``adata``,
    ``var_names`` = the model genes, ``X`` and ``layers['sthisto_pred']`` = the float32
    predictions, and ``uns['sthisto_pred']`` (genes, params, model version).
    """
    _check_model(model)
    stream_batch_size(batch_size, 0)
    if not isinstance(adata, AnnData):
        raise TypeError(f"expected an AnnData object, got {type(adata).__name__}")
    z = model.predict(adata, batch_size=batch_size)
    out = AnnData(
        X=z,
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=pd.Index(model.genes, name=None)),
        obsm={k: v.copy() for k, v in adata.obsm.items()},
        obsp={k: v.copy() for k, v in adata.obsp.items()},
    )
    if K.SPATIAL_UNS in adata.uns:
        out.uns[K.SPATIAL_UNS] = detach(adata.uns[K.SPATIAL_UNS])
    out.layers[K.PRED] = z.copy()
    out.uns[K.PRED] = _record(model, model.genes)
    return out
