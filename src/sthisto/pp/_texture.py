"""Weights-free colour and texture features of H&E patches (``image_features(model="texture")``).

Per patch: RGB and HED (``skimage.color.rgb2hed``) means, standard deviations, quantiles
and histograms; grey-level co-occurrence (GLCM) statistics at 1, 2 and 4 px averaged over
four directions (as ``skimage.feature.graycomatrix``/``graycoprops``); a uniform local
binary pattern histogram (as ``skimage.feature.local_binary_pattern(P=8, R=1,
method="uniform")``); and Sobel gradient magnitude statistics. The GLCM, LBP and gradient
loops are Numba kernels, parallel over patches.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sthisto._validate import rgb_image

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
N_BINS = 8
GLCM_LEVELS = 16
GLCM_DISTANCES = (1, 2, 4)
GLCM_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation", "entropy")
LBP_P = 8
_HED_OD_MIN = 20  # HED histogram range: optical densities of uint8 values in [20, 255]


def _hed_max() -> np.ndarray:
    from skimage.color import rgb2hed

    corners = np.array(np.meshgrid(*[[_HED_OD_MIN, 255]] * 3)).reshape(3, -1).T.astype(np.uint8)
    return rgb2hed(corners[None]).reshape(-1, 3).max(0)


def feature_names() -> list[str]:
    """Names of the texture features, in column order."""
    names = []
    for space, chans in (("rgb", "RGB"), ("hed", "HED")):
        for c in chans:
            names += [f"{space}_{c}_mean", f"{space}_{c}_std"]
            names += [f"{space}_{c}_q{int(q * 100):02d}" for q in QUANTILES]
            names += [f"{space}_{c}_hist{b}" for b in range(N_BINS)]
    names += [f"glcm_{p}_d{d}" for d in GLCM_DISTANCES for p in GLCM_PROPS]
    names += [f"lbp_u{k}" for k in range(LBP_P + 2)]
    names += ["grad_mean", "grad_std"]
    return names


def _colour_stats(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per channel mean, std, quantiles and a normalised histogram: x is (B, N, C)."""
    b, n, c = x.shape
    mean, std = x.mean(1), x.std(1)
    q = np.quantile(x, QUANTILES, axis=1).transpose(1, 2, 0)  # (B, C, nq)
    hist = np.empty((b, c, N_BINS))
    for ch in range(c):
        idx = np.clip(((x[..., ch] - lo[ch]) / (hi[ch] - lo[ch]) * N_BINS).astype(np.int64), 0, N_BINS - 1)
        hist[:, ch] = np.apply_along_axis(np.bincount, 1, idx, minlength=N_BINS) / n
    per_channel = np.concatenate([mean[..., None], std[..., None], q, hist], axis=2)  # (B, C, 15)
    return per_channel.reshape(b, -1)


def glcm_offsets() -> np.ndarray:
    """(row, col) offsets per (distance, angle), computed as skimage's ``graycomatrix`` does."""
    return np.array(
        [[round(math.sin(a) * d), round(math.cos(a) * d)] for d in GLCM_DISTANCES for a in GLCM_ANGLES],
        dtype=np.int64,
    )


@numba.njit(cache=True, nogil=True)
def _glcm_props(img: np.ndarray, dr: int, dc: int, levels: int, out: np.ndarray) -> None:
    """Symmetric normalised GLCM of one offset, reduced to the GLCM_PROPS (skimage's formulas)."""
    rows, cols = img.shape
    p = np.zeros((levels, levels))
    for r in range(max(0, -dr), min(rows, rows - dr)):
        for c in range(max(0, -dc), min(cols, cols - dc)):
            i, j = img[r, c], img[r + dr, c + dc]
            p[i, j] += 1.0
            p[j, i] += 1.0
    total = p.sum()
    if total == 0:
        total = 1.0
    p /= total
    contrast = dissim = homog = asm = entropy = 0.0
    mu_i = mu_j = 0.0
    for i in range(levels):
        for j in range(levels):
            v = p[i, j]
            d = i - j
            contrast += v * d * d
            dissim += v * abs(d)
            homog += v / (1.0 + d * d)
            asm += v * v
            if v != 0:
                entropy -= v * math.log(v)
            mu_i += i * v
            mu_j += j * v
    var_i = var_j = cov = 0.0
    for i in range(levels):
        for j in range(levels):
            v = p[i, j]
            var_i += v * (i - mu_i) ** 2
            var_j += v * (j - mu_j) ** 2
            cov += v * (i - mu_i) * (j - mu_j)
    sd_i, sd_j = math.sqrt(var_i), math.sqrt(var_j)
    corr = 1.0 if (sd_i < 1e-15 or sd_j < 1e-15) else cov / (sd_i * sd_j)
    out[0], out[1], out[2], out[3] = contrast, dissim, homog, asm
    out[4], out[5], out[6] = math.sqrt(asm), corr, entropy


@numba.njit(cache=True, nogil=True)
def _lbp_uniform_hist(img: np.ndarray, rp: np.ndarray, cp: np.ndarray, out: np.ndarray) -> None:
    """Histogram of skimage's uniform LBP (P points, bilinear) over interior pixels."""
    rows, cols = img.shape
    npts = rp.shape[0]
    tex = np.empty(npts)
    bits = np.empty(npts, dtype=np.int64)
    count = 0
    for r in range(1, rows - 1):
        for c in range(1, cols - 1):
            centre = float(img[r, c])
            for k in range(npts):
                rr = r + rp[k]
                cc = c + cp[k]
                minr, minc = math.floor(rr), math.floor(cc)
                maxr, maxc = math.ceil(rr), math.ceil(cc)
                drr, dcc = rr - minr, cc - minc
                tl, tr = float(img[minr, minc]), float(img[minr, maxc])
                bl, br = float(img[maxr, minc]), float(img[maxr, maxc])
                top = (1 - dcc) * tl + dcc * tr
                bottom = (1 - dcc) * bl + dcc * br
                tex[k] = (1 - drr) * top + drr * bottom
                bits[k] = 1 if tex[k] - centre >= 0 else 0
            changes = 0
            for k in range(npts - 1):  # skimage does not count the wrap-around transition
                if bits[k] != bits[k + 1]:
                    changes += 1
            code = npts + 1
            if changes <= 2:
                code = 0
                for k in range(npts):
                    code += bits[k]
            out[code] += 1.0
            count += 1
    if count > 0:
        out /= count


@numba.njit(cache=True, nogil=True)
def _sobel_stats(img: np.ndarray, out: np.ndarray) -> None:
    """Mean and std of the Sobel gradient magnitude over interior pixels (img in [0, 1])."""
    rows, cols = img.shape
    s = s2 = 0.0
    n = 0
    for r in range(1, rows - 1):
        for c in range(1, cols - 1):
            gx = (img[r - 1, c + 1] + 2 * img[r, c + 1] + img[r + 1, c + 1]
                  - img[r - 1, c - 1] - 2 * img[r, c - 1] - img[r + 1, c - 1])
            gy = (img[r + 1, c - 1] + 2 * img[r + 1, c] + img[r + 1, c + 1]
                  - img[r - 1, c - 1] - 2 * img[r - 1, c] - img[r - 1, c + 1])
            g = math.sqrt(gx * gx + gy * gy)
            s += g
            s2 += g * g
            n += 1
    if n > 0:
        m = s / n
        out[0] = m
        out[1] = math.sqrt(max(s2 / n - m * m, 0.0))


@numba.njit(parallel=True, cache=True)
def _texture_kernel(gray: np.ndarray, offsets: np.ndarray, n_angles: int, levels: int,
                    rp: np.ndarray, cp: np.ndarray, out: np.ndarray) -> None:
    b = gray.shape[0]
    n_off = offsets.shape[0]
    n_props = 7
    n_dist = n_off // n_angles
    npts = rp.shape[0]
    for i in numba.prange(b):
        g = gray[i]
        q = (g // (256 // levels)).astype(np.uint8)
        props = np.empty(n_props)
        for o in range(n_off):
            _glcm_props(q, offsets[o, 0], offsets[o, 1], levels, props)
            d = o // n_angles
            for k in range(n_props):
                out[i, d * n_props + k] += props[k] / n_angles
        base = n_dist * n_props
        lbp = np.zeros(npts + 2)
        _lbp_uniform_hist(g, rp, cp, lbp)
        for k in range(npts + 2):
            out[i, base + k] = lbp[k]
        grad = np.zeros(2)
        _sobel_stats(g.astype(np.float64) / 255.0, grad)
        out[i, base + npts + 2] = grad[0]
        out[i, base + npts + 3] = grad[1]


def lbp_points() -> tuple[np.ndarray, np.ndarray]:
    """Circle sample offsets of skimage's LBP for P=8, R=1 (rounded as skimage does)."""
    k = np.arange(LBP_P)
    rp = np.round(-np.sin(2 * np.pi * k / LBP_P), 5)
    cp = np.round(np.cos(2 * np.pi * k / LBP_P), 5)
    return rp, cp


def grey(images: np.ndarray) -> np.ndarray:
    """ITU-R 709 luminance as uint8 (the weights of ``skimage.color.rgb2gray``)."""
    g = images[..., :3].astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
    return np.clip(np.round(g), 0, 255).astype(np.uint8)


def texture_features(images: np.ndarray) -> np.ndarray:
    """Colour and texture features of a batch of RGB patches.

    Parameters
    ----------
    images
        uint8 array (B, H, W, 3).

    Returns
    -------
    float32 array (B, len(feature_names())).
    """
    from skimage.color import rgb2hed

    images = np.asarray(images)
    rgb_image(images, where="the patches given to texture_features()", batch=True)
    b = images.shape[0]
    rgb = images.reshape(b, -1, 3).astype(np.float32)
    colour = [_colour_stats(rgb, np.zeros(3), np.full(3, 256.0))]
    hed = rgb2hed(images).reshape(b, -1, 3)
    colour.append(_colour_stats(hed, np.zeros(3), _hed_max()))
    offsets = glcm_offsets()
    rp, cp = lbp_points()
    n_tex = len(GLCM_DISTANCES) * len(GLCM_PROPS) + LBP_P + 2 + 2
    tex = np.zeros((b, n_tex))
    _texture_kernel(np.ascontiguousarray(grey(images)), offsets, len(GLCM_ANGLES), GLCM_LEVELS, rp, cp, tex)
    return np.concatenate(colour + [tex], axis=1).astype(np.float32)
