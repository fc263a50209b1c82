"""Segmenters: what turns an H&E tile into a label image.

A segmenter is any object with the small :class:`Segmenter` protocol. Three come with
sthisto: :class:`Watershed` (the classical default), :class:`LabelImage` (a label image
computed elsewhere, e.g. HoVer-Net, CellViT or StarDist output for the whole slide) and
:class:`TileFunction` (a user function ``tile -> labels`` run on every tile). The tile
runner (:func:`segment_image`) only ever sees segmenters; :func:`as_segmenter` is the one
place where the shorthands ``"watershed"``, a callable or an array become one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sthisto._errors import InputError

from ._params import WatershedParams
from ._stain import hematoxylin_threshold
from ._watershed import segment_tile


@runtime_checkable
class Segmenter(Protocol):
    """What :func:`segment_image` needs from a segmenter.

    ``__call__`` runs in a worker (a thread, a process or a dask task), so a segmenter
    should be cheap to pickle; ``prepare`` runs once per image in the calling process.
    Subclass it to inherit the defaults of ``prepare``, ``source`` and ``record``.
    """

    name: str

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        """Label image ``(H, W)`` (0 = background) of one tile read from :meth:`source`."""
        ...

    def prepare(self, image, *, microns_per_pixel: float, bbox: tuple[int, int, int, int] | None) -> Segmenter:
        """Return the segmenter ready for ``image`` (e.g. with a section-wide threshold)."""
        return self

    def source(self, image):
        """Return the array tiles are read from (``image``, or a label image of the same size)."""
        return image

    def record(self) -> dict[str, Any]:
        """Parameters stored in ``uns[...]['params']`` next to ``method = name``."""
        return {}


@dataclass(frozen=True)
class Watershed(Segmenter):
    """The hematoxylin distance-transform watershed (:func:`segment_tile`).

    Parameters
    ----------
    params
        Watershed parameters (:class:`WatershedParams`).
    threshold
        Hematoxylin optical-density threshold; ``None``: Otsu over the processed region of
        the image, estimated once by :meth:`prepare` so every tile uses the same one.
    microns_per_pixel
        Set by :meth:`prepare`.
    """

    params: WatershedParams = field(default_factory=WatershedParams)
    threshold: float | None = None
    microns_per_pixel: float | None = None
    name: str = field(default="watershed", init=False)

    def __post_init__(self) -> None:
        from sthisto._validate import number

        if not isinstance(self.params, WatershedParams):
            raise InputError(f"Watershed params must be a WatershedParams, got {type(self.params).__name__}.")
        if self.threshold is not None:  # hematoxylin optical density is >= 0
            object.__setattr__(self, "threshold", number(
                self.threshold, "threshold", minimum=0,
                fix="give a hematoxylin optical density (about 0.02-0.2), or None for Otsu's threshold"))

    def prepare(self, image, *, microns_per_pixel, bbox):  # noqa: D102
        threshold = self.threshold
        if threshold is None:
            threshold = hematoxylin_threshold(image, microns_per_pixel=microns_per_pixel, bbox=bbox,
                                              sigma_um=self.params.sigma_um)
        return replace(self, threshold=float(threshold), microns_per_pixel=float(microns_per_pixel))

    def __call__(self, tile):  # noqa: D102
        if self.microns_per_pixel is None:
            raise ValueError("Watershed.microns_per_pixel is unset: call prepare() first (segment_image does).")
        return segment_tile(tile, microns_per_pixel=self.microns_per_pixel, threshold=self.threshold,
                            params=self.params)

    def record(self):  # noqa: D102
        out: dict[str, Any] = self.params.as_dict()
        if self.threshold is not None:
            out["threshold"] = float(self.threshold)
        return out


@dataclass(frozen=True)
class LabelImage(Segmenter):
    """A precomputed ``(H, W)`` integer label image of the whole full-resolution image.

    It is measured as it is, tile by tile (memory-mapped, zarr or dask arrays stay lazy).
    """

    labels: Any
    name: str = field(default="labels", init=False)

    def source(self, image):  # noqa: D102
        shape = tuple(getattr(self.labels, "shape", ()))
        if len(shape) != 2 or shape != tuple(image.shape[:2]):
            raise InputError(f"the label image (method=) has shape {shape} but the H&E image is "
                             f"{tuple(image.shape[:2])}; pass labels of the full-resolution image.")
        _check_dtype(np.dtype(self.labels.dtype), "the label image (method=)")
        return self.labels

    def __call__(self, tile):  # noqa: D102
        return tile


@dataclass(frozen=True)
class Passthrough(Segmenter):
    """The tile is already a label image: what a :class:`LabelImage`'s workers run (without its labels)."""

    name: str = field(default="labels", init=False)

    def __call__(self, tile):  # noqa: D102
        return tile


PASSTHROUGH = Passthrough()


@dataclass(frozen=True)
class TileFunction(Segmenter):
    """A user function ``tile (H, W, 3) uint8 -> labels (H, W)`` (a StarDist/CellViT wrapper…)."""

    fn: Callable[[np.ndarray], Any]

    @property
    def name(self) -> str:  # noqa: D102
        return f"callable:{getattr(self.fn, '__name__', type(self.fn).__name__)}"

    def __call__(self, tile):  # noqa: D102
        return check_labels(self.fn(tile), tile.shape[:2], f"the segmentation callable {self.name!r}")


@dataclass(frozen=True)
class Checked(Segmenter):
    """A user's :class:`Segmenter` whose label images are checked tile by tile.

    What it returns is measured only if it is an ``(H, W)`` image of non-negative integer
    labels; anything else raises an error naming the segmenter, not a failure inside the
    measurement kernels. Everything else is the wrapped segmenter's.
    """

    segmenter: Any

    @property
    def name(self) -> str:  # noqa: D102
        return self.segmenter.name

    def prepare(self, image, *, microns_per_pixel, bbox):  # noqa: D102
        return replace(self, segmenter=self.segmenter.prepare(image, microns_per_pixel=microns_per_pixel, bbox=bbox))

    def source(self, image):  # noqa: D102
        return self.segmenter.source(image)

    def record(self):  # noqa: D102
        return self.segmenter.record()

    def __call__(self, tile):  # noqa: D102
        return check_labels(self.segmenter(tile), tile.shape[:2], f"the segmenter {self.name!r}")


def checked(segmenter: Segmenter) -> Segmenter:
    """Wrap a user's segmenter in :class:`Checked`; sthisto's own segmenters are returned as they are."""
    return segmenter if isinstance(segmenter, Watershed | LabelImage | Passthrough | TileFunction | Checked) else Checked(segmenter)


def _check_dtype(dtype: np.dtype, who: str) -> None:
    if dtype.kind != "b" and not np.issubdtype(dtype, np.integer):
        raise InputError(f"{who} holds labels of dtype {dtype}; a label image holds integers (0 = background, "
                         "one positive id per nucleus). To fix: convert it, e.g. skimage.measure.label(mask) "
                         "or labels.astype(np.int32).")


def check_labels(labels: Any, shape: tuple[int, ...], who: str) -> np.ndarray:
    """Return ``labels`` as an array, raising unless it is an ``(H, W)`` image of labels >= 0.

    ``who`` (``"the segmenter 'x'"``) is named in the message.
    """
    arr = np.asarray(labels)
    if arr.shape != tuple(shape):
        raise InputError(f"{who} returned {type(labels).__name__} of shape {arr.shape} for a tile of shape "
                         f"{tuple(shape)}; it must return an (H, W) label image of the tile.")
    _check_dtype(arr.dtype, f"{who} returned an image that")
    if arr.size and arr.dtype.kind != "b" and arr.min() < 0:
        raise InputError(f"{who} returned negative labels (min {arr.min()}); 0 is background and nuclei "
                         "are numbered from 1.")
    return arr


def as_segmenter(method: Any) -> Segmenter:
    """Turn the ``method=`` shorthands into a :class:`Segmenter`.

    Parameters
    ----------
    method
        A :class:`Segmenter`; ``"watershed"`` (:class:`Watershed` with the default
        :class:`WatershedParams`); an array-like ``(H, W)`` label image
        (:class:`LabelImage`); or a callable ``tile -> labels`` (:class:`TileFunction`).

    Returns
    -------
    The segmenter.
    """
    if isinstance(method, str):
        if method != "watershed":
            raise ValueError(f"unknown method {method!r}: use 'watershed', a Segmenter, a callable "
                             "or a label image.")
        return Watershed()
    if isinstance(method, Segmenter):
        return method
    if hasattr(method, "shape") and hasattr(method, "dtype") and not callable(method):
        return LabelImage(method)
    if callable(method):
        return TileFunction(method)
    raise TypeError(f"method must be 'watershed', a Segmenter, a callable or a label image, "
                    f"got {type(method).__name__}")
