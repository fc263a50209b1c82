"""Spot-grid geometry: check pixel positions against the array grid and derive the pixel size.

Spots of legacy ST (square grid, 200 µm pitch) and Visium (hexagonal grid, 100 µm pitch)
sit on a lattice given by their array indices, so the pixel positions must be an affine
image of those indices: a least-squares fit gives the pixels per index step along both
axes. The two steps must have the platform's length ratio and be perpendicular, and the
residual must be small; otherwise the columns are mixed up or belong to another file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sthisto._errors import InputError

_STRETCH_TOLERANCE = 1.2  # the two index steps may differ from the platform ratio by this factor
_MAX_COS = 0.2  # |cos| of the angle between the two index steps (0 = perpendicular)
_MAX_RESIDUAL = 0.25  # residual RMS as a fraction of the spot pitch in pixels
_MIN_CONTRAST = 10.0  # grey levels between in-tissue and other spots that count as evidence


@dataclass
class GridFit:
    """Pixels per step of each array index (``u``, ``v``: 2-vectors) and the residual RMS (px)."""

    u: np.ndarray
    v: np.ndarray
    rms: float

    @property
    def reflected(self) -> bool:
        """True when the map from (index 1, index 2) to (x, y) pixels is a mirror image."""
        return float(self.u[0] * self.v[1] - self.u[1] * self.v[0]) < 0


def fit_grid(index: np.ndarray, pixels: np.ndarray) -> GridFit | None:
    """Least-squares affine map from array indices (n, 2) to pixels (n, 2).

    Returns ``None`` when the spots do not span two dimensions (fewer than three spots off
    one line), where there is nothing to check.
    """
    design = np.column_stack([np.asarray(index, dtype=np.float64), np.ones(len(index))])
    if len(design) < 3 or np.linalg.matrix_rank(design) < 3:
        return None
    pixels = np.asarray(pixels, dtype=np.float64)
    coef, *_ = np.linalg.lstsq(design, pixels, rcond=None)
    residual = pixels - design @ coef
    return GridFit(u=coef[0], v=coef[1], rms=float(np.sqrt((residual**2).sum(axis=1).mean())))


def _px_per_um(fit: GridFit, step_um: tuple[float, float]) -> np.ndarray:
    return np.array([np.linalg.norm(fit.u) / step_um[0], np.linalg.norm(fit.v) / step_um[1]])


def grid_problem(fit: GridFit, *, step_um: tuple[float, float], pitch_um: float, names: tuple[str, str],
                 pixel_names: tuple[str, str]) -> str | None:
    """Describe what is wrong with the positions of ``fit`` for this platform's grid (``None``: nothing).

    Parameters
    ----------
    fit
        The fit of pixel positions to the array indices.
    step_um
        Microns per step of each index (legacy ST ``(200, 200)``, Visium ``(50, 86.6)``).
    pitch_um
        Centre-to-centre distance of neighbouring spots, for the residual check.
    names, pixel_names
        Column names of the two indices and of the pixel coordinates, for the message.
    """
    nu, nv = float(np.linalg.norm(fit.u)), float(np.linalg.norm(fit.v))
    both, pixels = "/".join(names), "/".join(pixel_names)
    if min(nu, nv) == 0:
        return (f"the pixel positions do not change along {names[0] if nu == 0 else names[1]}; check that "
                f"{pixels} are the spot centres")
    px_per_um = _px_per_um(fit, step_um)
    if px_per_um.max() / px_per_um.min() > _STRETCH_TOLERANCE:
        return (f"the pixel positions do not follow the spot grid: one step of {names[0]} spans {nu:.1f} px and "
                f"one step of {names[1]} {nv:.1f} px, but on this platform they are {step_um[0]:g} and "
                f"{step_um[1]:g} µm; the {both} (or {pixels}) columns may be mixed up, or the positions may "
                "come from another file")
    cos = abs(float(fit.u @ fit.v)) / (nu * nv)
    if cos > _MAX_COS:
        return (f"the spot grid is sheared in pixel space (the {both} axes are "
                f"{np.degrees(np.arccos(cos)):.0f}° apart, not 90°); check the {pixels} columns")
    pitch_px = pitch_um * px_per_um.mean()
    if fit.rms > _MAX_RESIDUAL * pitch_px:
        return (f"the pixel positions scatter around the spot grid by {fit.rms:.0f} px (RMS), "
                f"{fit.rms / pitch_px:.0%} of the {pitch_px:.0f} px spot pitch; check that {pixels} belong "
                "to these spots")
    return None


def grid_pixel_size(fit: GridFit, *, step_um: tuple[float, float], pitch_um: float, where: str,
                    names: tuple[str, str], pixel_names: tuple[str, str]) -> float:
    """Microns per pixel implied by ``fit``, raising (naming ``where``) unless it follows the grid.

    See :func:`grid_problem` for the parameters and the checks.
    """
    problem = grid_problem(fit, step_um=step_um, pitch_um=pitch_um, names=names, pixel_names=pixel_names)
    if problem:
        raise InputError(f"{where}: {problem}.")
    return float(1.0 / _px_per_um(fit, step_um).mean())


def _tissue_contrast(img: np.ndarray, xy: np.ndarray, in_tissue: np.ndarray) -> float | None:
    """Mean stain of in-tissue spots minus that of the other spots, sampled at ``xy`` (x, y px)."""
    offsets = np.arange(-2, 3)
    ix = np.rint(xy[:, 0]).astype(np.int64)[:, None] + offsets
    iy = np.rint(xy[:, 1]).astype(np.int64)[:, None] + offsets
    inside = (ix.min(1) >= 0) & (iy.min(1) >= 0) & (ix.max(1) < img.shape[1]) & (iy.max(1) < img.shape[0])
    if (in_tissue & inside).sum() < 10 or (~in_tissue & inside).sum() < 10:
        return None
    patch = img[iy[inside][:, :, None], ix[inside][:, None, :]]  # (n, 5, 5, 3)
    stain = 255.0 - patch.min(axis=-1).mean(axis=(1, 2))  # white background ≈ 0
    keep = in_tissue[inside]
    return float(stain[keep].mean() - stain[~keep].mean())


def check_not_transposed(img: np.ndarray, xy: np.ndarray, in_tissue: np.ndarray, *, where: str) -> None:
    """Raise when the tissue in ``img`` matches the spots' ``in_tissue`` flags better with x and y swapped.

    ``xy`` are spot centres in ``img`` pixels. Space Ranger flags spots under tissue from the
    image itself, so with correct positions the in-tissue spots sit on stained pixels; with
    ``pxl_row``/``pxl_col`` swapped they sit on the mirror image of the tissue. A rotated or
    mirrored slide image does not trip this check (its positions still land on the tissue).
    """
    given = _tissue_contrast(img, xy, in_tissue)
    swapped = _tissue_contrast(img, xy[:, ::-1], in_tissue)
    if given is None or swapped is None:
        return
    if swapped > 1.5 * max(given, 0.0) and swapped - given > _MIN_CONTRAST:
        raise InputError(
            f"{where}: pxl_row_in_fullres and pxl_col_in_fullres look swapped: the spots flagged in_tissue "
            f"lie on the tissue of the image only with the two columns exchanged (stain contrast {swapped:.0f} "
            f"vs {given:.0f} as given). To fix: exchange the two columns of the tissue positions file."
        )
