"""The M2TGLGO model object: owns the torch module, config, preprocessing, history and selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ._config import M2TGLGOConfig
from ._preprocessing import Preprocessing, SectionData


def _version() -> str:
    from sthisto import __version__

    return __version__


class M2TGLGO:
    """A fitted M2TGLGO model (create it with :func:`sthisto.tl.fit`, or :meth:`load` it).

    Attributes
    ----------
    module
        The trained :class:`sthisto.module.Ensemble` of
        :class:`sthisto.module.M2TGLGOModule` s (one per ensemble member).
    config
        The :class:`sthisto.tl.M2TGLGOConfig` the model was built and trained with.
    preprocessing
        Feature schema and scalings learned on the training sections
        (:class:`sthisto.tl._preprocessing.Preprocessing`).
    history
        One row per epoch of every training run: ``run`` (``"inner:<i>"`` for the
        inner-validation runs, ``"member:<k>"`` for the ensemble members), ``epoch``, the
        loss and its unweighted components, ``time_s`` and, where scored, ``val_pcc``.
    selection
        How the number of epochs was chosen: ``method``, ``epochs`` (what the members were
        trained for), ``curve`` (epoch → mean inner-validation PCC) and ``splits``.
    version
        The sthisto version that trained the model.
    """

    def __init__(
        self,
        module,
        *,
        config: M2TGLGOConfig,
        preprocessing: Preprocessing,
        history: pd.DataFrame | None = None,
        selection: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> None:
        self.module = module
        self.config = config
        self.preprocessing = preprocessing
        self.history = history if history is not None else pd.DataFrame()
        self.selection = dict(selection or {})
        self.version = version or _version()

    # --------------------------------------------------------------- schema
    @property
    def genes(self) -> list[str]:
        """The predicted genes, in output order."""
        return self.preprocessing.genes

    @property
    def modalities(self) -> list[str]:
        """Modality names, in input order (see :data:`sthisto._constants.MODALITY_KEYS`)."""
        return self.preprocessing.modalities

    @property
    def feature_dims(self) -> dict[str, int]:
        """Expected feature width per modality."""
        return self.preprocessing.feature_dims

    @property
    def scalers(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-modality ``(mean, std)`` learned on the training sections only."""
        return self.preprocessing.scalers

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
    def section_data(self, adata: AnnData, *, targets: bool = False, rings: bool = False) -> SectionData:
        """Validate ``adata`` against the model's feature schema and return its arrays."""
        return self.preprocessing.section(adata, targets=targets, rings=rings)

    def predict(self, adata: AnnData, *, batch_size: int | None = None) -> np.ndarray:
        """Return the (n_obs, n_genes) float32 predicted log-normalised expression of one section.

        Parameters
        ----------
        adata
            A section with the model's feature blocks and a spot graph.
        batch_size
            Stream the section in spatial blocks of at most this many spots (exact: equal
            to the whole-section forward up to float rounding; memory bounded by a block).
            ``None``: whole section up to :data:`~sthisto.tl._stream.STREAM_MIN_SPOTS`
            spots, streamed in blocks of :data:`~sthisto.tl._stream.STREAM_BATCH_SIZE`
            above.
        """
        from sthisto._device import torch_threads

        from ._stream import stream_batch_size

        data = self.section_data(adata)
        size = stream_batch_size(batch_size, data.n_spots)
        with torch_threads(None):  # sthisto.settings.n_jobs threads, as in training
            z = self._outputs(data, size)
        return self.preprocessing.to_expression(z).astype(np.float32, copy=False)

    def _outputs(self, data: SectionData, batch_size: int | None) -> np.ndarray:
        """Model outputs (training scale): the whole section at once, or streamed in blocks."""
        import torch

        from ._stream import stream_predict

        if batch_size is not None:
            blocks = data.blocks(batch_size, len(self.config.hidden_dims))
            return stream_predict(self.module, data.features, blocks, self.device)
        xs, ei, _, _ = data.tensors(self.device)
        was_training = self.module.training
        self.module.eval()
        with torch.no_grad():
            z = self.module(xs, ei).float().cpu().numpy()
        self.module.train(was_training)
        return z

    # --------------------------------------------------------------- save/load
    def save(self, dir_path: str | Path, *, overwrite: bool = False) -> None:
        """Save weights, config, preprocessing, history, selection and version, with a checksum manifest.

        Parameters
        ----------
        dir_path
            Directory to write (created).
        overwrite
            Replace an existing saved model in ``dir_path``.

        Under ``torch.distributed`` only rank 0 writes (every rank holds the same
        weights); the other ranks return without writing.
        """
        from ._distributed import is_main_process
        from ._model_io import save_model

        if not is_main_process():
            return

        save_model(self, Path(dir_path), overwrite=overwrite)

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
        The model. Raises a ValueError naming the file when the directory is not a saved
        model, a file is truncated or corrupt (its checksum differs from the manifest), it
        was written by an older format, or its files disagree with each other.
        """
        from ._model_io import load_model

        return load_model(cls, Path(dir_path), device=device)

    def __repr__(self) -> str:
        c = self.config
        dims = ", ".join(f"{m}={self.feature_dims[m]}" for m in self.modalities)
        off = [k for k in ("use_within", "use_inter", "use_ranking", "use_recon", "use_go") if not getattr(c, k)]
        n_par = sum(t.numel() for t in self.module.parameters())
        return (
            f"M2TGLGO(genes={len(self.genes)}, modalities=[{dims}], hidden_dims={c.hidden_dims}, "
            f"members={len(self.module.members)}, epochs={self.selection.get('epochs')}, "
            f"ablated={off or 'none'}, parameters={n_par:,}, device={self.device}, sthisto={self.version})"
        )


#: config fields passed to :class:`~sthisto.module.M2TGLGOModule` under their own name
MODULE_FIELDS = ("hidden_dims", "gamma", "heads", "use_within", "use_inter", "dropout", "edge_dropout",
                 "activation", "gene_bias", "ranking_form", "recon_form", "n_quantiles", "epsilon",
                 "dense_recon_max_spots")


def build_member(config: M2TGLGOConfig, feature_dims: dict[str, int], modalities, n_genes: int, *,
                 gene_embeddings=None, gene_edge_index=None):
    """Build one :class:`~sthisto.module.M2TGLGOModule` from a config (the one mapping of fields)."""
    import torch

    from sthisto.module import M2TGLGOModule

    prior = (torch.as_tensor(gene_embeddings), torch.as_tensor(gene_edge_index)) if config.use_go else (None, None)
    if config.use_go and gene_embeddings is None:
        raise ValueError("use_go=True needs gene embeddings and a GO gene graph")
    return M2TGLGOModule(
        [feature_dims[m] for m in modalities],
        n_genes,
        **{name: getattr(config, name) for name in MODULE_FIELDS},
        gene_embeddings=prior[0],
        gene_edge_index=prior[1],
        loss_weights=config.active_loss_weights,
    )


def build_ensemble(config: M2TGLGOConfig, preprocessing: Preprocessing, n_members: int, *,
                   gene_embeddings=None, gene_edge_index=None):
    """Build an :class:`~sthisto.module.Ensemble` of ``n_members`` freshly initialised members."""
    from sthisto.module import Ensemble

    p = preprocessing
    return Ensemble([build_member(config, p.feature_dims, p.modalities, len(p.genes),
                                  gene_embeddings=gene_embeddings, gene_edge_index=gene_edge_index)
                     for _ in range(n_members)])
