"""The M2TGLGO model object: owns the torch module, genes, feature schema, scalers and history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from . import _data

_FILES = {"weights": "model.pt", "attrs": "attrs.json", "scalers": "scalers.npz", "history": "history.csv"}
_FORMAT = 1


def _version() -> str:
    from sthisto import __version__

    return __version__


class M2TGLGO:
    """A fitted M2TGLGO model (create it with :func:`sthisto.tl.fit`, or :meth:`load` it).

    Attributes
    ----------
    module
        The :class:`sthisto.models.M2TGLGOModule` (torch).
    init_params
        Hyper-parameters the module was built and trained with.
    genes
        The predicted genes, in output order.
    modalities
        Modality names, in input order (see :data:`sthisto._constants.MODALITY_KEYS`).
    feature_dims
        Expected feature width per modality.
    scalers
        Per-modality ``(mean, std)`` learned on the training sections only.
    history
        Per-epoch loss components (and validation PCC) as a DataFrame.
    version
        The sthisto version that trained the model.
    """

    def __init__(
        self,
        module,
        *,
        init_params: dict[str, Any],
        genes: Sequence[str],
        modalities: Sequence[str],
        feature_dims: dict[str, int],
        scalers: dict[str, tuple[np.ndarray, np.ndarray]],
        history: pd.DataFrame | None = None,
        version: str | None = None,
    ) -> None:
        self.module = module
        self.init_params = dict(init_params)
        self.genes = list(genes)
        self.modalities = list(modalities)
        self.feature_dims = {k: int(v) for k, v in feature_dims.items()}
        self.scalers = scalers
        self.history = history if history is not None else pd.DataFrame()
        self.version = version or _version()

    # ------------------------------------------------------------------ device
    @property
    def device(self):
        """The torch device holding the weights."""
        return next(self.module.parameters()).device

    def to(self, device: str | None = None) -> M2TGLGO:
        """Move the weights to ``device`` (resolved by :func:`sthisto._device.resolve_device`)."""
        from sthisto._device import resolve_device

        self.module.to(resolve_device(device))
        return self

    # ----------------------------------------------------------------- predict
    def section_data(self, adata: AnnData, *, genes: bool = False, layer: str | None = None, rings: bool = False):
        """Validate ``adata`` against the model's feature schema and return its arrays."""
        _data.check_section(adata)
        feats = _data.read_features(adata, self.modalities)
        _data.check_dims(feats, self.feature_dims, "this section")
        return _data.section_data(
            adata,
            modalities=self.modalities,
            scalers=self.scalers,
            features=feats,
            genes=self.genes if genes else None,
            layer=layer,
            rings=rings,
        )

    def predict(self, adata: AnnData, *, batch: _data.SectionData | None = None) -> np.ndarray:
        """Return the (n_obs, n_genes) float32 predicted log-normalised expression of one section."""
        import torch

        data = self.section_data(adata) if batch is None else batch
        xs, ei, _, _ = data.tensors(self.device)
        was_training = self.module.training
        self.module.eval()
        with torch.no_grad():
            _, z = self.module(xs, ei)
        self.module.train(was_training)
        return z.float().cpu().numpy()

    # --------------------------------------------------------------- save/load
    def _attrs(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "sthisto_version": self.version,
            "init_params": self.init_params,
            "genes": self.genes,
            "modalities": self.modalities,
            "feature_dims": self.feature_dims,
        }

    def save(self, dir_path: str | Path, *, overwrite: bool = False) -> None:
        """Save weights, init params, genes, feature schema, scalers, history and version.

        Parameters
        ----------
        dir_path
            Directory to write (created).
        overwrite
            Replace an existing saved model in ``dir_path``.
        """
        import torch

        path = Path(dir_path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True to replace it.")
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        torch.save(state, path / _FILES["weights"])
        (path / _FILES["attrs"]).write_text(json.dumps(self._attrs(), indent=1))
        arrays = {}
        for name, (mean, std) in self.scalers.items():
            arrays[f"{name}__mean"], arrays[f"{name}__std"] = mean, std
        np.savez(path / _FILES["scalers"], **arrays)
        self.history.to_csv(path / _FILES["history"], index=False)

    @classmethod
    def load(cls, dir_path: str | Path, *, device: str | None = "cpu") -> M2TGLGO:
        """Load a model written by :meth:`save`.

        Parameters
        ----------
        dir_path
            Directory written by :meth:`save`.
        device
            Device for the weights (``None`` → ``sthisto.settings.device``).

        Returns
        -------
        The model. Raises a ValueError when the saved files disagree with each other (a
        different feature schema or gene list than the weights).
        """
        import torch

        from sthisto._device import resolve_device

        path = Path(dir_path)
        for f in ("weights", "attrs", "scalers"):
            if not (path / _FILES[f]).exists():
                raise FileNotFoundError(f"{path / _FILES[f]} not found: not a saved sthisto M2TGLGO model")
        attrs = json.loads((path / _FILES["attrs"]).read_text())
        if attrs.get("format") != _FORMAT:
            raise ValueError(f"unsupported model format {attrs.get('format')!r} (expected {_FORMAT})")
        npz = np.load(path / _FILES["scalers"])
        scalers = {m: (npz[f"{m}__mean"], npz[f"{m}__std"]) for m in attrs["modalities"]}
        for m in attrs["modalities"]:
            d = attrs["feature_dims"][m]
            if scalers[m][0].shape != (d,):
                raise ValueError(
                    f"saved feature schema is inconsistent: {m} has {d} features but its scaler "
                    f"has {scalers[m][0].shape[0]}"
                )
        state = torch.load(path / _FILES["weights"], map_location="cpu", weights_only=True)
        module = build_module(attrs["init_params"], attrs["feature_dims"], attrs["modalities"],
                              len(attrs["genes"]), state=state)
        try:
            module.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"the weights in {path} do not match the saved feature schema / genes "
                f"({attrs['feature_dims']}, {len(attrs['genes'])} genes): {err}"
            ) from err
        hist_path = path / _FILES["history"]
        history = pd.DataFrame()
        if hist_path.exists() and hist_path.stat().st_size > 1:
            history = pd.read_csv(hist_path)
        model = cls(
            module,
            init_params=attrs["init_params"],
            genes=attrs["genes"],
            modalities=attrs["modalities"],
            feature_dims=attrs["feature_dims"],
            scalers=scalers,
            history=history,
            version=attrs["sthisto_version"],
        )
        model.module.to(resolve_device(device))
        model.module.eval()
        return model

    def __repr__(self) -> str:
        p = self.init_params
        dims = ", ".join(f"{m}={self.feature_dims[m]}" for m in self.modalities)
        off = [k for k in ("use_within", "use_inter", "use_ranking", "use_recon", "use_go") if not p.get(k, True)]
        n_par = sum(t.numel() for t in self.module.parameters())
        epochs = len(self.history)
        return (
            f"M2TGLGO(genes={len(self.genes)}, modalities=[{dims}], hidden_dims={tuple(p.get('hidden_dims', ()))}, "
            f"gamma={p.get('gamma')}, ablated={off or 'none'}, parameters={n_par:,}, "
            f"epochs_trained={epochs}, device={self.device}, sthisto={self.version})"
        )


def build_module(init_params: dict[str, Any], feature_dims: dict[str, int], modalities: Sequence[str],
                 n_genes: int, *, gene_embeddings=None, gene_edge_index=None, state=None):
    """Build an :class:`~sthisto.models.M2TGLGOModule` from saved init params.

    With ``state`` (a saved state dict), the GO-prior buffers are taken from it.
    """
    import torch

    from sthisto.models import M2TGLGOModule

    if init_params["use_go"] and state is not None:
        gene_embeddings = state["gene_head.gene_embeddings"]
        gene_edge_index = state["gene_head.gene_edge_index"]
    elif init_params["use_go"] and gene_embeddings is not None:
        gene_embeddings = torch.as_tensor(gene_embeddings)
        gene_edge_index = torch.as_tensor(gene_edge_index)
    return M2TGLGOModule(
        [feature_dims[m] for m in modalities],
        n_genes,
        hidden_dims=tuple(init_params["hidden_dims"]),
        gamma=init_params["gamma"],
        use_within=init_params["use_within"],
        use_inter=init_params["use_inter"],
        use_ranking=init_params["use_ranking"],
        use_recon=init_params["use_recon"],
        gene_embeddings=gene_embeddings if init_params["use_go"] else None,
        gene_edge_index=gene_edge_index if init_params["use_go"] else None,
        n_quantiles=init_params["n_quantiles"],
        epsilon=init_params["epsilon"],
        loss_weights=init_params["loss_weights"],
        dense_recon_max_spots=init_params["dense_recon_max_spots"],
        heads=init_params["heads"],
    )
