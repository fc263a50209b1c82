"""Build the bundled HER2ST demo (sections C2, C3, C4) from ../shared/data/her2st.

Each section keeps all genes (the original counts file) and its full-resolution H&E,
cropped to the spotted area and blanked (white) farther than ``MARGIN_UM`` from every spot
edge, so JPEG compresses the unused background to almost nothing while nuclei inside and
around spots stay at full resolution. Pixel coordinates are shifted by the crop offset,
which is recorded in ``provenance.json``.

Usage: python scripts/build_her2st_demo.py [../shared/data/her2st]
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.spatial import cKDTree

SECTIONS = ("C2", "C3", "C4")
SPOT_DIAMETER_UM = 100.0
MARGIN_UM = 25.0
JPEG_QUALITY = 80
OUT = Path(__file__).resolve().parents[1] / "src" / "sthisto" / "datasets" / "_data" / "her2st_demo"


def pixel_size(spots: pd.DataFrame) -> float:
    sx = np.polyfit(spots["new_x"], spots["pixel_x"], 1)[0]
    sy = np.polyfit(spots["new_y"], spots["pixel_y"], 1)[0]
    return 200.0 / np.mean([abs(sx), abs(sy)])


def build_section(src: Path, section: str) -> dict:
    Image.MAX_IMAGE_PIXELS = None
    spots = pd.read_csv(src / "spots" / f"{section}_selection.tsv", sep="\t")
    image = np.asarray(Image.open(src / "images" / f"{section}.jpg").convert("RGB"))
    mpp = pixel_size(spots)
    keep_px = (SPOT_DIAMETER_UM / 2 + MARGIN_UM) / mpp
    x0 = max(int(spots["pixel_x"].min() - keep_px) - 1, 0)
    y0 = max(int(spots["pixel_y"].min() - keep_px) - 1, 0)
    x1 = min(int(np.ceil(spots["pixel_x"].max() + keep_px)) + 2, image.shape[1])
    y1 = min(int(np.ceil(spots["pixel_y"].max() + keep_px)) + 2, image.shape[0])
    crop = image[y0:y1, x0:x1].copy()
    centres = np.column_stack([spots["pixel_x"] - x0, spots["pixel_y"] - y0])
    yy, xx = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]]
    dist, _ = cKDTree(centres).query(np.column_stack([xx.ravel(), yy.ravel()]), distance_upper_bound=keep_px)
    crop[~np.isfinite(dist).reshape(crop.shape[:2])] = 255
    Image.fromarray(crop).save(OUT / f"{section}.jpg", quality=JPEG_QUALITY, optimize=True)
    shifted = spots.copy()
    shifted["pixel_x"] = (spots["pixel_x"] - x0).round(2)
    shifted["pixel_y"] = (spots["pixel_y"] - y0).round(2)
    shifted.to_csv(OUT / f"{section}_selection.tsv", sep="\t", index=False)
    shutil.copyfile(src / "counts" / f"{section}.tsv.gz", OUT / f"{section}.tsv.gz")
    sha = hashlib.sha256((src / "images" / f"{section}.jpg").read_bytes()).hexdigest()
    return {"crop_offset_xy": [x0, y0], "source_image_shape": list(image.shape), "source_image_sha256": sha,
            "microns_per_pixel": mpp, "kept_radius_px": keep_px}


def main(src: str = "../shared/data/her2st") -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    provenance = {
        "description": "HER2ST sections C2-C4 (patient C), cropped to the spotted area; background "
        f"farther than {MARGIN_UM} µm from every spot edge set to white; JPEG quality {JPEG_QUALITY}.",
        "source": "Andersson A. et al., Nat Commun 12, 6012 (2021); https://github.com/almaan/her2st; Zenodo 3957257",
        "license": "CC BY 4.0",
        "sections": {s: build_section(Path(src), s) for s in SECTIONS},
    }
    (OUT / "provenance.json").write_text(json.dumps(provenance, indent=1))
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
