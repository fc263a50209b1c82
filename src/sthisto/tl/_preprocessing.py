"""What M2TGLGO learns from its training sections before training, and applies to every section.

:class:`Preprocessing` holds the feature schema (modalities, widths, column names), the
feature standardisation and clipping, the genes, and the target standardisation — all
learned on the training sections only — and turns any section into a
:class:`SectionData` (scaled arrays, spot graph, hop rings, targets). A fitted
:class:`sthisto.tl.M2TGLGO` saves it, so prediction applies exactly what training saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from anndata import AnnData

from sthisto import _constants as K

from . import _data


@dataclass
class SectionData:
    """One section as arrays: scaled features, spot graph, hop rings and (optional) targets.

    ``coords`` (the spot coordinates, when the section has them) place the spatial blocks
    of mini-batch training and streaming prediction (:meth:`blocks`).
    """

    features: list[np.ndarray]
    edge_index: np.ndarray
    rings: np.ndarray | None
    target: np.ndarray | None
    coords: np.ndarray | None = None

    @property
    def n_spots(self) -> int:
        """Number of spots."""
        return int(self.features[0].shape[0])

    def blocks(self, batch_size: int, hops: int):
        """Return the section's spatial blocks of at most ``batch_size`` spots with a ``hops``-hop halo."""
        import scipy.sparse as sp

        from ._batches import section_blocks

        n = self.n_spots
        ei = self.edge_index
        graph = sp.csr_matrix((np.ones(ei.shape[1], dtype=np.float32), (ei[0], ei[1])), shape=(n, n))
        return section_blocks(graph, batch_size, hops, self.coords)

    def tensors(self, device):
        """Return ``(xs, edge_index, rings, target)`` as torch tensors on ``device``."""
        import torch

        xs = [torch.as_tensor(f, device=device) for f in self.features]
        ei = torch.as_tensor(self.edge_index, device=device)
        rings = None if self.rings is None else torch.as_tensor(self.rings, device=device)
        target = None if self.target is None else torch.as_tensor(self.target, device=device)
        return xs, ei, rings, target


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-12] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass
class Preprocessing:
    """Feature schema, feature and target scaling learned on training sections.

    Attributes
    ----------
    modalities
        Modality names, in input order.
    feature_dims
        Width of each modality block.
    feature_columns
        Column names of each block (``None`` for an unnamed array), matched by name on
        new sections.
    scalers
        Per-modality ``(mean, std)`` of the training sections.
    feature_clip
        Standardised features are clipped to ``±feature_clip`` (``None``: not clipped).
    genes
        The modelled genes.
    layer
        Layer of raw counts (``None``: ``X``).
    target_scaler
        Per-gene ``(mean, std)`` of the training targets, or ``None`` when the model is
        trained on the log-normalised values themselves.
    neighbors_key
        Key of the spot graph, ``obsp['{neighbors_key}_connectivities']``.
    """

    modalities: list[str]
    feature_dims: dict[str, int]
    feature_columns: dict[str, list[str] | None]
    scalers: dict[str, tuple[np.ndarray, np.ndarray]]
    feature_clip: float | None
    genes: list[str]
    layer: str | None
    target_scaler: tuple[np.ndarray, np.ndarray] | None
    neighbors_key: str = K.SPATIAL_NEIGHBORS

    @classmethod
    def fit(
        cls,
        adatas: Sequence[AnnData],
        *,
        modalities: Sequence[str],
        genes: Sequence[str],
        layer: str | None,
        feature_clip: float | None,
        standardize_targets: bool,
        neighbors_key: str = K.SPATIAL_NEIGHBORS,
        where: str = "training section",
    ) -> Preprocessing:
        """Learn the schema and scalings from ``adatas`` (checked section by section)."""
        modalities = list(modalities)
        feats = []
        for i, a in enumerate(adatas):
            _data.check_section(a, f"{where} {i}")
            feats.append(_data.read_features(a, modalities, f"{where} {i}"))
        dims = {m: feats[0][m].shape[1] for m in modalities}
        for i, f in enumerate(feats[1:], start=1):
            _data.check_dims(f, dims, f"{where} {i}")
        columns = _data.feature_columns(adatas[0], modalities)
        for i, a in enumerate(adatas[1:], start=1):
            for m, names in _data.feature_columns(a, modalities).items():
                if names is not None and columns[m] is not None and sorted(names) != sorted(columns[m]):
                    raise ValueError(
                        f"{where} {i}: adata.obsm[{_data.modality_key(m)!r}] has other feature columns "
                        f"than {where} 0; compute the features with the same settings for every section."
                    )
        for i, a in enumerate(adatas):
            _data.check_genes(a, genes, f"{where} {i}")
        scalers = {m: _mean_std(np.concatenate([f[m] for f in feats])) for m in modalities}
        target_scaler = None
        if standardize_targets:
            target_scaler = _mean_std(np.concatenate([_data.log_targets(a, genes, layer) for a in adatas]))
        return cls(modalities=modalities, feature_dims=dims, feature_columns=columns, scalers=scalers,
                   feature_clip=feature_clip, genes=list(genes), layer=layer, target_scaler=target_scaler,
                   neighbors_key=neighbors_key)

    def features(self, adata: AnnData, where: str = "this section") -> list[np.ndarray]:
        """Scaled (and clipped) feature blocks of ``adata``, columns matched by name."""
        feats = _data.read_features(adata, self.modalities, where, columns=self.feature_columns)
        _data.check_dims(feats, self.feature_dims, where)
        out = []
        for m in self.modalities:
            mean, std = self.scalers[m]
            x = (feats[m] - mean) / std
            if self.feature_clip is not None:
                np.clip(x, -self.feature_clip, self.feature_clip, out=x)
            out.append(np.ascontiguousarray(x, dtype=np.float32))
        return out

    def section(self, adata: AnnData, *, targets: bool = False, rings: bool = False,
                where: str = "this section") -> SectionData:
        """Turn ``adata`` into model inputs (targets on the training scale when asked)."""
        _data.check_section(adata, where)
        x = self.features(adata, where)
        graph = _data.spot_graph(adata, self.neighbors_key)
        y = None
        if targets:
            _data.check_genes(adata, self.genes, where)
            y = _data.log_targets(adata, self.genes, self.layer)
            if self.target_scaler is not None:
                y = (y - self.target_scaler[0]) / self.target_scaler[1]
        coords = adata.obsm.get(K.SPATIAL_KEY)
        coords = None if coords is None else np.asarray(coords, dtype=np.float64)[:, :2]
        if coords is not None and not np.isfinite(coords).all():
            coords = None  # blocks then follow the graph alone
        return SectionData(features=x, edge_index=_data.edge_index(graph),
                           rings=_data.padded_rings(graph) if rings else None, target=y, coords=coords)

    def to_expression(self, z: np.ndarray) -> np.ndarray:
        """Model outputs → log-normalised expression (undo the target standardisation)."""
        if self.target_scaler is None:
            return z
        return z * self.target_scaler[1] + self.target_scaler[0]

    # ------------------------------------------------------------------ save/load
    def arrays(self) -> dict[str, np.ndarray]:
        """Return the learned arrays, for ``np.savez``."""
        out = {}
        for m, (mean, std) in self.scalers.items():
            out[f"{m}__mean"], out[f"{m}__std"] = mean, std
        if self.target_scaler is not None:
            out["target__mean"], out["target__std"] = self.target_scaler
        return out

    def attrs(self) -> dict:
        """Return the JSON-ready settings (everything but the arrays)."""
        return {"modalities": self.modalities, "feature_dims": self.feature_dims,
                "feature_columns": self.feature_columns, "feature_clip": self.feature_clip,
                "genes": self.genes, "layer": self.layer, "neighbors_key": self.neighbors_key,
                "standardize_targets": self.target_scaler is not None}

    @classmethod
    def from_saved(cls, attrs: dict, arrays, *, where: str) -> Preprocessing:
        """Rebuild from :meth:`attrs` and :meth:`arrays`, checking they agree."""
        scalers = {}
        for m in attrs["modalities"]:
            d = int(attrs["feature_dims"][m])
            try:
                mean, std = np.asarray(arrays[f"{m}__mean"]), np.asarray(arrays[f"{m}__std"])
            except KeyError as err:
                raise ValueError(f"{where}: the scalers of modality {m!r} are missing.") from err
            if mean.shape != (d,) or std.shape != (d,):
                raise ValueError(f"{where}: saved feature schema is inconsistent: {m} has {d} features "
                                 f"but its scaler has {mean.shape[0]}")
            scalers[m] = (mean, std)
        target_scaler = None
        if attrs["standardize_targets"]:
            target_scaler = (np.asarray(arrays["target__mean"]), np.asarray(arrays["target__std"]))
            if target_scaler[0].shape != (len(attrs["genes"]),):
                raise ValueError(f"{where}: the target scaler does not match the {len(attrs['genes'])} genes.")
        return cls(modalities=list(attrs["modalities"]),
                   feature_dims={k: int(v) for k, v in attrs["feature_dims"].items()},
                   feature_columns=dict(attrs["feature_columns"]), scalers=scalers,
                   feature_clip=attrs["feature_clip"], genes=list(attrs["genes"]), layer=attrs["layer"],
                   target_scaler=target_scaler, neighbors_key=attrs["neighbors_key"])
