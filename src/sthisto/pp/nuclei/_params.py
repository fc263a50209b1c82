"""``WatershedParams``: the one definition of the watershed's defaults."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from sthisto._errors import InputError

MAX_LENGTH_UM = 25.0  # bound of the length parameters: larger than any nucleus


@dataclass(frozen=True)
class WatershedParams:
    """Parameters of the hematoxylin distance-transform watershed, all in microns.

    :func:`sthisto.pp.segment_nuclei` stores them as they are in
    ``uns['sthisto_nuclei']['params']`` and :func:`sthisto.pl.nuclei_outlines` reads them
    back from there to rebuild the labels of a spot.

    Attributes
    ----------
    sigma_um
        Gaussian smoothing of the hematoxylin channel.
    min_distance_um
        Minimal distance between two watershed seeds (splits touching nuclei).
    min_area_um2, max_area_um2
        Objects outside this area range (µm²) are discarded; ``max_area_um2=None`` (stored
        as ``inf``) sets no upper bound.
    opening_um
        Radius of the binary opening that removes specks and thin bridges.
    peak_smoothing_um
        Gaussian smoothing of the distance transform before seeds are taken at its local
        maxima, so an elongated nucleus whose width varies slightly is not cut in pieces.

    Every field is a finite number >= 0; the lengths (``*_um``) are at most 25 µm (larger
    than any nucleus); ``max_area_um2`` may be ``None`` (no bound).
    """

    sigma_um: float = 1.0
    min_distance_um: float = 3.0
    min_area_um2: float = 10.0
    max_area_um2: float | None = 500.0
    opening_um: float = 1.0
    peak_smoothing_um: float = 0.5

    def __post_init__(self) -> None:
        from sthisto._validate import number

        if self.max_area_um2 is None:
            object.__setattr__(self, "max_area_um2", math.inf)
        for f in fields(self):
            value = getattr(self, f.name)
            name = f"WatershedParams.{f.name}"
            if f.name == "max_area_um2" and value == math.inf:
                continue
            if f.name.endswith("_um"):  # a length: beyond a nucleus it removes every nucleus (and runs for hours)
                value = number(value, name, minimum=0, maximum=MAX_LENGTH_UM,
                               fix="give a length in µm of the order of a nucleus (a few µm)")
            else:
                value = number(value, name, minimum=0, fix="give an area in µm² (max_area_um2=None: no bound)")
            object.__setattr__(self, f.name, float(value))
        if self.max_area_um2 < self.min_area_um2:
            raise InputError(f"WatershedParams: max_area_um2 ({self.max_area_um2}) is below "
                             f"min_area_um2 ({self.min_area_um2})")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Field names (what :func:`sthisto.pp.segment_nuclei` accepts as keywords)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> WatershedParams:
        """Rebuild from a mapping that holds (some of) the fields, e.g. ``uns[...]['params']``.

        Other keys are ignored; a missing field takes its default (params stored by older
        versions lack ``opening_um`` and ``peak_smoothing_um``, which had these defaults).
        """
        return cls(**{k: params[k] for k in cls.names() if k in params})

    def replace(self, **changes: Any) -> WatershedParams:
        """Copy with some fields changed; an unknown name raises a ``TypeError`` naming it."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise TypeError(f"unknown watershed parameters {unknown}; known: {list(self.names())}")
        return type(self)(**{**asdict(self), **changes})

    def as_dict(self) -> dict[str, float]:
        """Field -> value, as stored in ``uns`` (``max_area_um2`` without bound is ``inf``)."""
        return asdict(self)
