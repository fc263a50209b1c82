"""Build tests/data/visium_hd_tiny: a small Space Ranger Visium HD output folder.

A real Visium HD sample cannot be downloaded here, so this writes the Space Ranger 3.x
``outs/`` layout that spatialdata-io's ``visium_hd`` reader reads, on a 512×512 crop of the
bundled HER2ST C2 H&E (``tests/data/her2st_crop_C2.png``, 0.688 µm/px):

    feature_slice.h5                      attrs["metadata_json"]: hd_layout_json (file_format 1.0),
                                          transform_matrices (spot col/row <-> microscope col/row);
                                          umis/total/{row,col,data} (UMIs per 2 µm bin)
    spatial/                              tissue_hires_image.png, tissue_lowres_image.png,
                                          scalefactors_json.json (2 µm bins)
    binned_outputs/square_{002,008,016}um/
        filtered_feature_bc_matrix.h5     10x HDF5 (matrix/{barcodes,data,indices,indptr,shape,features})
        spatial/tissue_positions.parquet  barcode, in_tissue, array_row, array_col,
                                          pxl_row_in_fullres, pxl_col_in_fullres
        spatial/scalefactors_json.json    spot_diameter_fullres, bin_size_um, microns_per_pixel, ...
    microscope_image/tissue_image.tif     the full-resolution H&E (spatialdata-io looks here)

The bin lattice is rotated by 1° against the image, as a real slide is against its
microscope image; array indices start at an offset (rows 1000+, cols 1200+ on the 2 µm
grid) as inside a real 3350×3350 capture area. Counts are simulated on the 2 µm bins —
Poisson with rates driven by the local hematoxylin/eosin content, so nuclei features carry
signal — and summed into 8 and 16 µm bins exactly as Space Ranger bins them. Barcodes
follow Space Ranger (``s_008um_00250_00300-1``).

Usage: python scripts/build_visium_hd_fixture.py [out_dir]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.ndimage as ndi
import scipy.sparse as sp
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "data" / "her2st_crop_C2.png"
MPP = 0.688098  # µm per pixel of the crop (HER2ST C2, from the 200 µm spot pitch)
ROTATION_DEG = 1.0
N_2UM = 168  # 2 µm bins per side (336 µm, inside the 352 µm crop)
ROW0, COL0 = 1000, 1200  # 2 µm array index of the lattice corner (multiples of 8)
BINS_UM = (2, 8, 16)
GENES = ["ERBB2", "GRB7", "GNAS", "KRT19", "KRT8", "EPCAM", "CD24", "MUC1", "COL1A1", "COL1A2",
         "COL3A1", "FN1", "SPARC", "VIM", "PTPRC", "CD74", "HLA-DRA", "ACTB", "MGP", "DCN", "LUM",
         "IGKC", "MT-CO1", "TFF3"]
SEED = 0


def lattice_affine() -> np.ndarray:
    """3×3 affine mapping 2 µm array (col, row) to microscope pixel (col, row) = (x, y)."""
    theta = np.deg2rad(ROTATION_DEG)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) * (2.0 / MPP)
    side_px = N_2UM * 2.0 / MPP
    centre = np.array([256.0, 256.0])
    # the lattice centre (2 µm array col/row COL0 + N/2, ROW0 + N/2) sits at the image centre
    offset = centre - rot @ np.array([COL0 + N_2UM / 2.0, ROW0 + N_2UM / 2.0])
    assert side_px < 512
    out = np.eye(3)
    out[:2, :2], out[:2, 2] = rot, offset
    return out


def bin_centres(bin_um: int, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array row/col and pixel centres (x, y) of the bins of one size."""
    k = bin_um // 2
    n = N_2UM // k
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    # centre of bin (r, c) in 2 µm array units: corner + (index + 0.5) * k - 0.5 (2 µm bin centres at integers)
    col2 = COL0 + (cols.ravel() + 0.5) * k - 0.5
    row2 = ROW0 + (rows.ravel() + 0.5) * k - 0.5
    xy = (affine[:2, :2] @ np.vstack([col2, row2])).T + affine[:2, 2]
    return ROW0 // k + rows.ravel(), COL0 // k + cols.ravel(), xy


def simulate_counts(img: np.ndarray, xy2: np.ndarray, rng) -> sp.csr_matrix:
    """Poisson counts per 2 µm bin, rates set by smoothed hematoxylin and eosin at the bin."""
    from skimage.color import rgb2hed

    hed = rgb2hed(img)
    sigma = 4.0 / MPP
    h = ndi.gaussian_filter(hed[..., 0], sigma)
    e = ndi.gaussian_filter(hed[..., 1], sigma)
    coords = np.vstack([xy2[:, 1], xy2[:, 0]])
    hz = ndi.map_coordinates(h, coords, order=1)
    ez = ndi.map_coordinates(e, coords, order=1)
    hz, ez = (hz - hz.mean()) / hz.std(), (ez - ez.mean()) / ez.std()
    a = rng.uniform(-1.0, 1.0, size=len(GENES))
    b = rng.uniform(-0.7, 0.7, size=len(GENES))
    base = rng.uniform(0.01, 0.15, size=len(GENES))
    rates = base * np.exp(np.outer(hz, a) + np.outer(ez, b))
    return sp.csr_matrix(rng.poisson(rates).astype(np.int32))


def aggregate(counts2: sp.csr_matrix, bin_um: int) -> sp.csr_matrix:
    """Sum 2 µm bins into bins of ``bin_um`` (Space Ranger's binning)."""
    k = bin_um // 2
    if k == 1:
        return counts2
    n2, n = N_2UM, N_2UM // k
    r, c = np.divmod(np.arange(n2 * n2), n2)
    target = (r // k) * n + (c // k)
    member = sp.csr_matrix((np.ones(n2 * n2), (target, np.arange(n2 * n2))), shape=(n * n, n2 * n2))
    return (member @ counts2).tocsr().astype(np.int32)


def write_10x_h5(path: Path, counts: sp.csr_matrix, barcodes: list[str]) -> None:
    """Write a Cell Ranger / Space Ranger v3 feature-barcode matrix (genes × barcodes, CSC)."""
    csc = counts.T.tocsc()  # features × barcodes, columns = barcodes
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["library_ids"] = np.array([b"tiny"])
        f.attrs["chemistry_description"] = "Visium HD v1"
        f.attrs["software_version"] = "spaceranger-3.1.1 (sthisto fixture)"
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
        g.create_dataset("data", data=csc.data.astype(np.int32), compression="gzip")
        g.create_dataset("indices", data=csc.indices.astype(np.int64), compression="gzip")
        g.create_dataset("indptr", data=csc.indptr.astype(np.int64), compression="gzip")
        g.create_dataset("shape", data=np.array(csc.shape, dtype=np.int32))
        feats = g.create_group("features")
        feats.create_dataset("id", data=np.array([f"ENSG{i:011d}" for i in range(len(GENES))], dtype="S"))
        feats.create_dataset("name", data=np.array(GENES, dtype="S"))
        feats.create_dataset("feature_type", data=np.array(["Gene Expression"] * len(GENES), dtype="S"))
        feats.create_dataset("genome", data=np.array(["GRCh38"] * len(GENES), dtype="S"))
        feats.create_dataset("_all_tag_keys", data=np.array([b"genome"]))


def scalefactors(bin_um: int, hires: float, lowres: float) -> dict:
    return {
        "spot_diameter_fullres": bin_um / MPP,
        "bin_size_um": float(bin_um),
        "microns_per_pixel": MPP,
        "regist_target_img_scalef": hires,
        "tissue_lowres_scalef": lowres,
        "fiducial_diameter_fullres": 1208.0 * 0.2738 / MPP,
        "tissue_hires_scalef": hires,
    }


def main(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    img = np.asarray(Image.open(SOURCE).convert("RGB"))
    if out.exists():
        shutil.rmtree(out)
    (out / "spatial").mkdir(parents=True)
    (out / "microscope_image").mkdir()
    import tifffile

    tifffile.imwrite(out / "microscope_image" / "tissue_image.tif", img, compression="zlib", photometric="rgb")
    hires, lowres = 0.5, 0.125
    for name, s in (("tissue_hires_image.png", hires), ("tissue_lowres_image.png", lowres)):
        size = (round(img.shape[1] * s), round(img.shape[0] * s))
        Image.fromarray(img).resize(size, Image.Resampling.BOX).save(out / "spatial" / name)
    (out / "spatial" / "scalefactors_json.json").write_text(json.dumps(scalefactors(2, hires, lowres), indent=2))

    affine = lattice_affine()
    rows2, cols2, xy2 = bin_centres(2, affine)
    counts2 = simulate_counts(img, xy2, rng)
    for bin_um in BINS_UM:
        rows, cols, xy = bin_centres(bin_um, affine)
        counts = aggregate(counts2, bin_um)
        barcodes = [f"s_{bin_um:03d}um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols, strict=True)]
        in_tissue = np.asarray(counts.sum(1)).ravel() > 0
        folder = out / "binned_outputs" / f"square_{bin_um:03d}um"
        (folder / "spatial").mkdir(parents=True)
        keep = np.flatnonzero(in_tissue)
        write_10x_h5(folder / "filtered_feature_bc_matrix.h5", counts[keep], [barcodes[i] for i in keep])
        positions = pd.DataFrame({
            "barcode": barcodes, "in_tissue": in_tissue.astype(np.int32),
            "array_row": rows.astype(np.int32), "array_col": cols.astype(np.int32),
            "pxl_row_in_fullres": xy[:, 1], "pxl_col_in_fullres": xy[:, 0],
        })
        positions.to_parquet(folder / "spatial" / "tissue_positions.parquet", index=False)
        (folder / "spatial" / "scalefactors_json.json").write_text(
            json.dumps(scalefactors(bin_um, hires, lowres), indent=2))
        print(f"square_{bin_um:03d}um: {len(keep)} bins in tissue, {counts.sum()} UMIs")

    spot_to_micro = affine
    micro_to_spot = np.linalg.inv(affine)
    layout = {"file_format": "1.0", "num_rows": 3350, "num_cols": 3350, "spot_pitch": 2.0,
              "transform": np.eye(3).ravel().tolist()}
    metadata = {
        "hd_layout_json": json.dumps(layout),
        "transform_matrices": {
            "spot_colrow_to_microscope_colrow": spot_to_micro.ravel().tolist(),
            "microscope_colrow_to_spot_colrow": micro_to_spot.ravel().tolist(),
            # no CytAssist image in this fixture: the CytAssist frame is taken as the microscope frame
            "spot_colrow_to_cytassist_colrow": spot_to_micro.ravel().tolist(),
            "cytassist_colrow_to_spot_colrow": micro_to_spot.ravel().tolist(),
        },
        "sample_id": "tiny",
    }
    total = np.asarray(counts2.sum(1)).ravel()
    with h5py.File(out / "feature_slice.h5", "w") as f:
        f.attrs["metadata_json"] = json.dumps(metadata)
        g = f.create_group("umis/total")
        nz = np.flatnonzero(total)
        g.create_dataset("row", data=(rows2[nz]).astype(np.int32), compression="gzip")
        g.create_dataset("col", data=(cols2[nz]).astype(np.int32), compression="gzip")
        g.create_dataset("data", data=total[nz].astype(np.int32), compression="gzip")
    (out / "README.txt").write_text(__doc__)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "visium_hd_tiny")
