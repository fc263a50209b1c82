"""Small real H&E crop of HER2ST section C2 (tests/data/her2st_crop_C2.*) as arrays and AnnData."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).parents[2] / "data"
CROP_MPP = 0.688098  # from the 200 µm spot pitch of C2 (see her2st_crop_C2.txt)
SPOT_DIAMETER_UM = 100.0


def crop_rgb() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(DATA / "her2st_crop_C2.png").convert("RGB"))


def crop_adata():
    """AnnData of the crop: the C2 spots whose disk overlaps it, full-res image attached."""
    from anndata import AnnData

    spots = pd.read_csv(DATA / "her2st_crop_C2_spots.tsv", sep="\t")
    names = [f"{x}x{y}" for x, y in zip(spots["x"], spots["y"], strict=True)]
    adata = AnnData(np.ones((len(spots), 2), dtype=np.float32), obs=pd.DataFrame(index=names))
    adata.obsm["spatial"] = spots[["crop_x", "crop_y"]].to_numpy(np.float64)
    adata.uns["spatial"] = {
        "C2crop": {
            "images": {"fullres": crop_rgb()},
            "scalefactors": {"spot_diameter_fullres": SPOT_DIAMETER_UM / CROP_MPP,
                             "microns_per_pixel": CROP_MPP},
            "metadata": {},
        }
    }
    return adata
