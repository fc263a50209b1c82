"""``M2TGLGOConfig``: every hyper-parameter of M2TGLGO, its one default, and the presets.

:func:`sthisto.tl.fit` resolves ``preset`` → ``config`` → keyword overrides into one frozen
config; :meth:`sthisto.tl.M2TGLGO.save` writes it and ``load`` validates it. Nothing else
in sthisto holds a default for these settings.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sthisto._validate import integer, number, one_of

EPOCH_SELECTIONS = ("inner", "fixed")
ACTIVATIONS = ("sigmoid", "identity")
LOSS_NAMES = ("gene", "ranking", "recon")


def _weights(**kw: float) -> Mapping[str, float]:
    return MappingProxyType(dict(kw))


@dataclass(frozen=True)
class M2TGLGOConfig:
    """Architecture, losses, optimisation, model selection and ensembling of M2TGLGO.

    The defaults are sthisto's recipe; :meth:`paper` gives the published model. Every
    field can be overridden by name in :func:`sthisto.tl.fit` (``fit(adatas, epochs=100)``).

    Parameters
    ----------
    hidden_dims
        Widths of the MMGE layers; the last is the width of the spot embedding H.
    gamma
        Weight of the within-modal embedding in ``H_m = γ H^WI + (1 − γ) H^IT`` (Eq. 5).
    heads
        GAT attention heads (averaged).
    use_within, use_inter
        Keep the within-modal GATs / the inter-modal attention (ablation switches).
    use_go
        Build the gene matrix P with a GAT over the GO gene graph (Eq. 13); ``False``
        learns P directly (the GO ablation).
    activation
        Activation of the fused embedding H: ``"sigmoid"`` (Eq. 6) or ``"identity"``.
    dropout
        Dropout on the modality inputs and on each MMGE layer's output while training.
    edge_dropout
        Fraction of spot-graph edges dropped at each training step (DropEdge).
    feature_clip
        Standardised features are clipped to ``±feature_clip`` (training mean and sd), so
        one outlying spot — a background or edge spot of a full image, a heavy-tailed
        texture value — cannot dominate a layer. ``None`` keeps them unclipped.
    standardize_targets
        Train on per-gene standardised targets (training mean and sd) and return
        predictions on the log-normalised scale. The loss then weighs every gene alike,
        as the per-gene PCC does.
    gene_bias
        A learned per-gene offset in the gene head (``Ẑ = H Pᵀ + b``).
    loss_weights
        Weights of the ``"gene"`` MSE, the ``"ranking"`` loss (SONRM, Eq. 9) and the
        ``"recon"`` adjacency reconstruction loss (Eqs. 7–8); 0 switches a term off.
    use_ranking, use_recon
        Ablation switches for the two auxiliary losses (``False`` = weight 0).
    ranking_form, recon_form
        Form of each auxiliary loss (:data:`sthisto.module.RANKING_FORMS`,
        :data:`sthisto.module.RECON_FORMS`).
    n_quantiles, epsilon
        SONRM quantile levels (4 → 0.25, 0.5, 0.75, 1) and margin ε.
    dense_recon_max_spots
        Above this many spots in a section the reconstruction loss samples pairs.
    epochs
        Passes over the training sections (one optimiser step per section); with
        ``epoch_selection="inner"`` the most that inner validation may choose.
    lr, weight_decay
        AdamW learning rate and weight decay.
    epoch_selection
        ``"inner"``: choose the number of epochs by inner validation on the training
        sections (leave one training section out; a single section is split into two
        spatial halves), then train on all of them for that many epochs. ``"fixed"``:
        train ``epochs`` epochs.
    eval_every
        Epochs between two validation scores.
    n_ensemble
        Models trained with seeds drawn from the fit's seed, and averaged.
    early_stopping, patience
        With ``epoch_selection="fixed"`` and a ``val_adata``: stop when the validation
        PCC has not improved for ``patience`` epochs and restore the best weights.
    batch_size
        ``None`` (default): full batch, one optimiser step per section. An integer:
        mini-batch training for large sections — each section is cut into spatially
        contiguous blocks of at most ``batch_size`` spots, each with the halo of graph
        hops the MMGE layers need, and each block is one step; the gene, ranking and
        reconstruction losses are defined on the block's core spots (hop rings and
        pairs inside the block), so memory is bounded by the block whatever the section
        size. Validation then streams block by block (exact).
    """

    # architecture
    hidden_dims: tuple[int, ...] = (128, 128)
    gamma: float = 0.6
    heads: int = 1
    use_within: bool = True
    use_inter: bool = True
    use_go: bool = True
    activation: str = "sigmoid"
    dropout: float = 0.5
    edge_dropout: float = 0.3
    # inputs and targets
    feature_clip: float | None = 5.0
    standardize_targets: bool = True
    gene_bias: bool = True
    # losses
    loss_weights: Mapping[str, float] = field(default_factory=lambda: _weights(gene=1.0, ranking=0.0, recon=0.0))
    use_ranking: bool = True
    use_recon: bool = True
    ranking_form: str = "paper"
    recon_form: str = "paper"
    n_quantiles: int = 4
    epsilon: float = 0.01
    dense_recon_max_spots: int = 10_000
    # optimisation
    epochs: int = 300
    lr: float = 1e-3
    weight_decay: float = 1e-2
    # model selection and ensembling
    epoch_selection: str = "inner"
    eval_every: int = 5
    n_ensemble: int = 3
    early_stopping: bool = False
    patience: int = 50
    # scale
    batch_size: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        dims = self.hidden_dims
        if isinstance(dims, int | str) or not len(tuple(dims)):
            raise ValueError(f"hidden_dims must be a non-empty sequence of positive integers, got {dims!r}")
        set_(self, "hidden_dims", tuple(integer(d, f"hidden_dims[{i}]", minimum=1) for i, d in enumerate(dims)))
        set_(self, "gamma", number(self.gamma, "gamma", minimum=0.0, maximum=1.0))
        set_(self, "heads", integer(self.heads, "heads", minimum=1))
        set_(self, "dropout", number(self.dropout, "dropout", minimum=0.0, maximum=0.95))
        set_(self, "edge_dropout", number(self.edge_dropout, "edge_dropout", minimum=0.0, maximum=0.95))
        if self.feature_clip is not None:
            set_(self, "feature_clip", number(self.feature_clip, "feature_clip", minimum=1e-6))
        one_of(self.activation, "activation", ACTIVATIONS)
        one_of(self.epoch_selection, "epoch_selection", EPOCH_SELECTIONS)
        from sthisto.module._losses import (  # the one registry of forms (imports torch)
            RANKING_FORMS,
            RECON_FORMS,
        )

        one_of(self.ranking_form, "ranking_form", tuple(RANKING_FORMS))
        one_of(self.recon_form, "recon_form", tuple(RECON_FORMS))
        weights = dict(self.loss_weights)
        unknown = set(weights) - set(LOSS_NAMES)
        if unknown:
            raise ValueError(f"unknown loss_weights keys {sorted(unknown)}; use {list(LOSS_NAMES)}.")
        defaults = dict(type(self).__dataclass_fields__["loss_weights"].default_factory())
        weights = {k: number(weights.get(k, defaults[k]), f"loss_weights[{k!r}]", minimum=0.0) for k in LOSS_NAMES}
        if weights["gene"] <= 0:
            raise ValueError("loss_weights['gene'] must be positive: it is the expression loss.")
        set_(self, "loss_weights", _weights(**weights))
        set_(self, "n_quantiles", integer(self.n_quantiles, "n_quantiles", minimum=1))
        set_(self, "epsilon", number(self.epsilon, "epsilon", minimum=0.0))
        set_(self, "dense_recon_max_spots", integer(self.dense_recon_max_spots, "dense_recon_max_spots", minimum=2))
        set_(self, "epochs", integer(self.epochs, "epochs", minimum=1))
        set_(self, "lr", number(self.lr, "lr", minimum=1e-12))
        set_(self, "weight_decay", number(self.weight_decay, "weight_decay", minimum=0.0))
        set_(self, "eval_every", integer(self.eval_every, "eval_every", minimum=1))
        set_(self, "n_ensemble", integer(self.n_ensemble, "n_ensemble", minimum=1))
        set_(self, "patience", integer(self.patience, "patience", minimum=1))
        if self.batch_size is not None:
            set_(self, "batch_size", integer(self.batch_size, "batch_size", minimum=1,
                                             fix="or None for full-batch training"))
        for name in ("use_within", "use_inter", "use_go", "use_ranking", "use_recon", "standardize_targets",
                     "gene_bias", "early_stopping"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if not (self.use_within or self.use_inter):
            raise ValueError("at least one of use_within and use_inter must be True.")

    # ------------------------------------------------------------------ derived
    @property
    def active_loss_weights(self) -> dict[str, float]:
        """Weights of the loss terms that are computed (switched on and weighted > 0)."""
        on = {"gene": True, "ranking": self.use_ranking, "recon": self.use_recon}
        return {k: w for k, w in self.loss_weights.items() if on[k] and w > 0}

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls) -> M2TGLGOConfig:
        """Return the published M2TGLGO: 256/512 layers, sigmoid H, 1 : 1 : 1 losses, lr 1e-4, 500 epochs.

        No dropout, feature clipping, target standardisation, gene offset, model
        selection or ensembling (the paper has none).
        """
        return cls(hidden_dims=(256, 512), dropout=0.0, edge_dropout=0.0, feature_clip=None,
                   standardize_targets=False, gene_bias=False,
                   loss_weights=_weights(gene=1.0, ranking=1.0, recon=1.0), epochs=500, lr=1e-4,
                   epoch_selection="fixed", n_ensemble=1)

    # ------------------------------------------------------------- conversion
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of every field (what :meth:`M2TGLGO.save` writes)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["hidden_dims"] = list(self.hidden_dims)
        out["loss_weights"] = dict(self.loss_weights)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, where: str = "config") -> M2TGLGOConfig:
        """Rebuild a config, naming any field that is missing or unknown."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"{where}: unknown M2TGLGO settings {sorted(unknown)}; "
                             f"this sthisto knows {sorted(names)}.")
        values = {**FILLED_ON_LOAD, **dict(values)}
        missing = names - set(values)
        if missing:
            raise ValueError(f"{where}: the settings {sorted(missing)} are missing (written by an older "
                             "sthisto?); retrain the model with this version.")
        return cls(**dict(values))

    def replace(self, **overrides: Any) -> M2TGLGOConfig:
        """Return a copy with ``overrides`` (unknown names get a did-you-mean error)."""
        check_names(overrides)
        return dataclasses.replace(self, **overrides)


#: fields added after models were saved without them, with the value those models were trained with
FILLED_ON_LOAD = MappingProxyType({"batch_size": None})

PRESETS = {"default": M2TGLGOConfig, "paper": M2TGLGOConfig.paper}


def check_names(overrides: Mapping[str, Any]) -> None:
    """Raise a ``TypeError`` for names that are not fields of :class:`M2TGLGOConfig`."""
    names = [f.name for f in dataclasses.fields(M2TGLGOConfig)]
    for key in overrides:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{key!r} is not an M2TGLGO setting{hint} (see sthisto.tl.M2TGLGOConfig)")


def resolve_config(preset: str = "default", config: M2TGLGOConfig | Mapping[str, Any] | None = None,
                   **overrides: Any) -> M2TGLGOConfig:
    """``preset`` → ``config`` (a config or a dict of fields) → ``overrides``, later ones winning."""
    one_of(preset, "preset", tuple(PRESETS))
    base = PRESETS[preset]()
    if isinstance(config, M2TGLGOConfig):
        base = config
    elif config is not None:
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be an M2TGLGOConfig or a dict, got {type(config).__name__}")
        base = base.replace(**dict(config))
    return base.replace(**overrides) if overrides else base
