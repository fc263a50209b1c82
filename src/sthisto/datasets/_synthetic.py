"""A deterministic H&E-like synthetic section whose expression depends on its nuclei.

The backbone of fast tests: nuclei (hematoxylin-dark ellipses on an eosin background) are
planted at known positions with spatially varying density and size; genes follow a few
"programs" driven by local nucleus density, nucleus size and eosin intensity, so a model
that sees the image can learn them. A toy Gene Ontology (OBO + GAF text) groups genes of
the same program under shared terms. Different seeds give different sections of the same
tissue: gene programs are fixed, layouts and counts vary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from sthisto import _constants as K
from sthisto._image import downsample
from sthisto._validate import affordable, integer, number, one_of

_LIBRARY_ID = "synthetic"
_N_PROGRAMS = 3  # density, size, eosin
_BACKGROUND = np.array([236.0, 186.0, 210.0])  # eosin pink
_NUCLEUS = np.array([70.0, 45.0, 125.0])  # hematoxylin purple


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], n_bumps: int = 5) -> np.ndarray:
    """Sum of random Gaussian bumps, scaled to [0, 1], evaluated on a coarse grid."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    field = np.zeros(shape)
    for _ in range(n_bumps):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        s = rng.uniform(0.15, 0.35) * max(h, w)
        field += rng.uniform(0.5, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
    field -= field.min()
    return field / max(field.max(), 1e-12)


def _sample_field(field: np.ndarray, x: np.ndarray, y: np.ndarray, step: float) -> np.ndarray:
    iy = np.clip((y / step).astype(int), 0, field.shape[0] - 1)
    ix = np.clip((x / step).astype(int), 0, field.shape[1] - 1)
    return field[iy, ix]


def _hex_grid(n_spots: int, pitch: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Visium layout: odd rows shifted by half a pitch, array columns ``2·col + row % 2``."""
    n_cols = int(np.ceil(np.sqrt(n_spots * 2 / np.sqrt(3))))
    rows, cols = np.divmod(np.arange(n_spots), n_cols)
    x = margin + (cols + 0.5 * (rows % 2)) * pitch
    y = margin + rows * pitch * np.sqrt(3) / 2
    return np.column_stack([x, y]), np.column_stack([rows, 2 * cols + rows % 2])


def _square_grid(n_spots: int, pitch: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Legacy ST layout: a square lattice, array columns and rows one pitch apart."""
    n_cols = int(np.ceil(np.sqrt(n_spots)))
    rows, cols = np.divmod(np.arange(n_spots), n_cols)
    return np.column_stack([margin + cols * pitch, margin + rows * pitch]), np.column_stack([rows, cols])


_GRIDS = {"hexagonal": _hex_grid, "square": _square_grid}


def _plant_nuclei(rng, shape, mpp, density, size, step) -> pd.DataFrame:
    """One nucleus per grid cell with probability ``density``: no two nuclei overlap."""
    r_max_px = 6.0 / mpp
    cell = 2 * r_max_px + 8
    h, w = shape
    cy, cx = np.mgrid[0 : int(h // cell), 0 : int(w // cell)].reshape(2, -1) * cell
    jitter = cell - 2 * (r_max_px + 1)
    x = cx + r_max_px + 1 + rng.uniform(0, jitter, cx.size)
    y = cy + r_max_px + 1 + rng.uniform(0, jitter, cy.size)
    keep = rng.uniform(size=x.size) < 0.05 + 0.9 * _sample_field(density, x, y, step)
    x, y = x[keep], y[keep]
    s = _sample_field(size, x, y, step)
    major = (3.0 + 3.0 * s + rng.uniform(-0.3, 0.3, x.size)) / mpp
    ratio = rng.uniform(0.6, 1.0, x.size)
    return pd.DataFrame(
        {
            "x": x,
            "y": y,
            "radius": major * np.sqrt(ratio),
            "semi_major": major,
            "semi_minor": major * ratio,
            "angle": rng.uniform(0, np.pi, x.size),
        }
    )


def _render(rng, shape, nuclei: pd.DataFrame, eosin: np.ndarray, step: float) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    e = _sample_field(eosin, xx.ravel(), yy.ravel(), step).reshape(h, w)
    img = _BACKGROUND[None, None, :] * (1.0 - 0.25 * e[..., None])
    for row in nuclei.itertuples(index=False):
        r = int(np.ceil(row.semi_major)) + 2
        x0, x1 = max(int(row.x) - r, 0), min(int(row.x) + r + 1, w)
        y0, y1 = max(int(row.y) - r, 0), min(int(row.y) + r + 1, h)
        dy, dx = np.mgrid[y0:y1, x0:x1]
        dx, dy = dx - row.x, dy - row.y
        c, s = np.cos(row.angle), np.sin(row.angle)
        u, v = (dx * c + dy * s) / row.semi_major, (-dx * s + dy * c) / row.semi_minor
        alpha = np.clip((1.0 - np.sqrt(u**2 + v**2)) * row.semi_minor + 0.5, 0.0, 1.0)[..., None]
        patch = img[y0:y1, x0:x1]
        img[y0:y1, x0:x1] = patch * (1 - alpha) + _NUCLEUS * alpha
    img += rng.normal(0, 6.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _spot_latents(nuclei, spots_xy, radius_px, eosin, step, mpp) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import cKDTree

    tree = cKDTree(nuclei[["x", "y"]].to_numpy())
    members = tree.query_ball_point(spots_xy, r=radius_px)
    count = np.array([len(m) for m in members], dtype=float)
    mean_r = np.array(
        [nuclei["radius"].to_numpy()[m].mean() * mpp if m else 3.0 for m in members]
    )
    e = _sample_field(eosin, spots_xy[:, 0], spots_xy[:, 1], step)
    z = np.column_stack([count, mean_r, e])
    z = (z - z.mean(0)) / np.maximum(z.std(0), 1e-9)
    spot = np.full(len(nuclei), -1)
    for i, m in enumerate(members):
        spot[m] = i
    return z, spot


def _toy_gene_ontology(genes: list[str], programs: np.ndarray) -> tuple[str, str]:
    """OBO + GAF text: each program gets BP/MF/CC leaves under shared intermediate terms."""
    roots = {
        "biological_process": "GO:0008150",
        "molecular_function": "GO:0003674",
        "cellular_component": "GO:0005575",
    }
    lines = ["format-version: 1.2", "ontology: go", ""]
    term_id = iter(range(9000001, 9999999))
    leaves: dict[int, list[str]] = {p: [] for p in range(-1, _N_PROGRAMS)}

    def term(name, ns, parents):
        tid = f"GO:{next(term_id):07d}"
        lines.extend(["[Term]", f"id: {tid}", f"name: {name}", f"namespace: {ns}"])
        lines.extend(f"is_a: {p}" for p in parents)
        lines.append("")
        return tid

    for ns, root in roots.items():
        lines.extend(["[Term]", f"id: {root}", f"name: {ns}", f"namespace: {ns}", ""])
        mid = term(f"{ns} group", ns, [root])
        for p in range(-1, _N_PROGRAMS):
            inner = term(f"program {p} {ns}", ns, [mid])
            leaves[p].append(term(f"program {p} {ns} leaf a", ns, [inner]))
            leaves[p].append(term(f"program {p} {ns} leaf b", ns, [inner]))
    aspect = {"biological_process": "P", "molecular_function": "F", "cellular_component": "C"}
    gaf = ["!gaf-version: 2.1"]
    for i, (gene, p) in enumerate(zip(genes, programs, strict=True)):
        for j, tid in enumerate(leaves[int(p)]):
            if (i + j) % 3 == 2:  # not every gene carries every term
                continue
            ns = list(aspect)[j // 2]
            cols = ["SYN", f"S{i:05d}", gene, "", tid, "PMID:0", "IDA", "", aspect[ns],
                    gene.lower(), f"{gene}_ALIAS", "protein", "taxon:9606", "20190101", "SYN", "", ""]
            gaf.append("\t".join(cols))
    return "\n".join(lines), "\n".join(gaf) + "\n"


def synthetic(
    n_spots: int = 100,
    n_genes: int = 50,
    *,
    microns_per_pixel: float = 1.0,
    spot_diameter_um: float = 55.0,
    spot_pitch_um: float = 100.0,
    grid: str = "hexagonal",
    seed: int = 0,
) -> AnnData:
    """Make a synthetic H&E section with planted nuclei and image-driven expression.

    Parameters
    ----------
    n_spots
        Number of spots on a Visium-like hexagonal grid.
    n_genes
        Number of genes; each belongs to one of three programs (driven by nucleus
        density, nucleus size, eosin intensity) or, for one in ten, to none (noise).
    microns_per_pixel
        Pixel size of the full-resolution image.
    spot_diameter_um, spot_pitch_um
        Spot geometry in microns.
    grid
        Spot layout: ``"hexagonal"`` (Visium) or ``"square"`` (legacy ST, e.g. with
        ``spot_diameter_um=100, spot_pitch_um=200``).
    seed
        Section seed: layout, nuclei and counts. Gene programs do not depend on it.

    Returns
    -------
    AnnData with integer counts in ``X`` (CSR), ``obs[['array_row', 'array_col']]``,
    ``obsm['spatial']`` (full-resolution x, y pixels), ``uns['spatial']['synthetic']``
    (``images['fullres'|'hires']``, ``scalefactors``), and ``uns['sthisto_synthetic']``
    with the planted ``nuclei`` table, ``latents`` per spot, and toy ``go_obo``/``go_gaf`` text.
    """
    n_spots, n_genes = integer(n_spots, "n_spots", minimum=1), integer(n_genes, "n_genes", minimum=1)
    microns_per_pixel = number(microns_per_pixel, "microns_per_pixel", positive=True)
    spot_diameter_um = number(spot_diameter_um, "spot_diameter_um", positive=True)
    spot_pitch_um = number(spot_pitch_um, "spot_pitch_um", positive=True)
    make_grid = _GRIDS[one_of(grid, "grid", tuple(_GRIDS))]
    seed = integer(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    tissue = np.random.default_rng(20240601 + n_genes)  # gene programs: same for all seeds
    pitch = spot_pitch_um / microns_per_pixel
    side = (1.1 * np.sqrt(n_spots) + 3) * pitch  # image side in pixels, rendered in float64 RGB
    affordable(48.0 * side**2 + 24.0 * n_spots * n_genes, f"a synthetic section of {n_spots} spots × {n_genes} "
               f"genes ({side:.0f} px a side)", fix="lower n_spots / n_genes or raise microns_per_pixel")
    xy, array_pos = make_grid(n_spots, pitch, margin=pitch)
    shape = (int(xy[:, 1].max() + pitch), int(xy[:, 0].max() + pitch))
    step = 8.0
    coarse = (int(shape[0] // step) + 1, int(shape[1] // step) + 1)
    density, size, eosin = (_smooth_field(rng, coarse) for _ in range(3))
    nuclei = _plant_nuclei(rng, shape, microns_per_pixel, density, size, step)
    image = _render(rng, shape, nuclei, eosin, step)
    radius_px = spot_diameter_um / microns_per_pixel / 2
    z, nuclei["spot"] = _spot_latents(nuclei, xy, radius_px, eosin, step, microns_per_pixel)

    programs = np.arange(n_genes) % (_N_PROGRAMS + 1) - 1  # -1 = noise gene
    weights = np.zeros((n_genes, _N_PROGRAMS))
    signal = programs >= 0
    weights[signal, programs[signal]] = tissue.choice([-1.0, 1.0], signal.sum()) * tissue.uniform(
        0.6, 1.2, signal.sum()
    )
    base = tissue.uniform(0.5, 2.5, n_genes)
    log_rate = base[None, :] + z @ weights.T + rng.normal(0, 0.15, (n_spots, n_genes))
    library = rng.lognormal(0.0, 0.2, (n_spots, 1))
    counts = rng.poisson(np.exp(log_rate) * library)

    genes = [f"GENE{i:04d}" for i in range(n_genes)]
    obs_names = [f"spot{i:04d}" for i in range(n_spots)]
    hires, hires_scalef = downsample(image, max_dim=max(64, max(shape) // 2))
    adata = AnnData(
        X=sp.csr_matrix(counts.astype(np.float32)),
        obs=pd.DataFrame({"array_row": array_pos[:, 0], "array_col": array_pos[:, 1]}, index=obs_names),
        var=pd.DataFrame({"program": programs}, index=genes),
    )
    adata.obsm[K.SPATIAL_KEY] = xy
    adata.uns[K.SPATIAL_UNS] = {
        _LIBRARY_ID: {
            "images": {K.FULLRES: image, K.HIRES: hires},
            "scalefactors": {
                K.SPOT_DIAMETER: spot_diameter_um / microns_per_pixel,
                K.SCALEF_HIRES: hires_scalef,
                K.MICRONS_PER_PIXEL: microns_per_pixel,
            },
            "metadata": {"source": "sthisto.datasets.synthetic", "seed": seed},
        }
    }
    obo, gaf = _toy_gene_ontology(genes, programs)
    adata.uns["sthisto_synthetic"] = {
        "nuclei": nuclei,
        "latents": pd.DataFrame(z, index=obs_names, columns=["density", "size", "eosin"]),
        "go_obo": obo,
        "go_gaf": gaf,
    }
    return adata
