"""Benchmark sthisto.pp.image_features on a full HER2ST section (CPU, N threads).

Measures patches/s and peak RSS of each extractor in a fresh process, the image being a
memory-mapped ``.npy`` decoded once from the JPEG (so RSS reflects tile-by-tile reading),
and runs a quick within-section ridge probe on the features.

    python benchmarks/bench_image_features.py --section C2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "her2st"
WORK = Path(os.environ.get("STHISTO_BENCH_DIR", "/tmp/sthisto_bench"))
METHODS = {
    "texture": {"model": "texture"},
    "resnet50-random": {"model": "resnet50", "weights": None},
}


def _image_npy(section: str) -> Path:
    out = WORK / f"{section}.npy"
    if not out.exists():
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None
        WORK.mkdir(parents=True, exist_ok=True)
        np.save(out, np.asarray(Image.open(DATA / "images" / f"{section}.jpg").convert("RGB")))
    return out


def _section(section: str):
    """The section as AnnData whose full-resolution image is a path to the memory-mapped .npy.

    Read once with the legacy ST reader and cached as h5ad, so a worker's peak RSS does not
    include the reader's one-off decoding/downsampling of the whole image.
    """
    import anndata as ad

    cached = WORK / f"{section}.h5ad"
    if not cached.exists():
        import sthisto as st

        adata = st.read.legacy_st(
            DATA / "counts" / f"{section}.tsv.gz",
            DATA / "spots" / f"{section}_selection.tsv",
            _image_npy(section),
            spot_diameter_um=100.0,
        )
        adata.write_h5ad(cached)
    return ad.read_h5ad(cached)


def worker(section: str, method: str, threads: int, batch_size: int) -> None:
    import resource

    import torch

    import sthisto as st

    torch.set_num_threads(threads)
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    st.settings.progress_bar = False
    adata = _section(section)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kwargs = METHODS[method]
    warm = adata[:4].copy()  # compile numba kernels / allocate once, outside the timing
    st.pp.image_features(warm, batch_size=batch_size, **kwargs)
    t0 = time.perf_counter()
    st.pp.image_features(adata, batch_size=batch_size, key_added="feat", **kwargs)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(WORK / f"{section}_{method}.npy", np.asarray(adata.obsm["feat"], dtype=np.float32))
    p = adata.uns["feat"]["params"]
    print(json.dumps({
        "method": method, "n_spots": adata.n_obs, "seconds": dt, "patches_per_s": adata.n_obs / dt,
        "peak_rss_mb": rss, "rss_before_mb": rss0, "n_features": p["n_features"],
        "microns_per_pixel": p["microns_per_pixel"], "patch_image_px": p["patch_image_px"],
        "n_border": p["n_border"], "image_mb": _image_npy(section).stat().st_size / 2**20,
    }))


def ridge_probe(section: str, methods: list[str], n_genes: int = 50, seed: int = 0) -> dict[str, float]:
    """5-fold (random split) ridge probe within one section: mean PCC over top-variance genes."""
    import scanpy as sc
    from sklearn.decomposition import PCA
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    adata = _section(section)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    x = adata.X.toarray()
    top = np.argsort(-x.var(0))[:n_genes]
    y = x[:, top]
    out = {}
    for method in methods:
        feats = np.load(WORK / f"{section}_{method}.npy")
        pred = np.zeros_like(y)
        for tr, te in KFold(5, shuffle=True, random_state=seed).split(feats):
            k = min(64, len(tr) - 1, feats.shape[1])
            model = make_pipeline(StandardScaler(), PCA(k, random_state=seed), RidgeCV(alphas=np.logspace(-1, 4, 12)))
            pred[te] = model.fit(feats[tr], y[tr]).predict(feats[te])
        pcc = [np.corrcoef(pred[:, g], y[:, g])[0, 1] for g in range(y.shape[1]) if y[:, g].std() > 0]
        out[method] = float(np.nanmean(pcc))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--section", default="C2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--worker")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "image_features.md"))
    args = ap.parse_args()
    if args.worker == "prepare":
        _section(args.section)
        return
    if args.worker:
        worker(args.section, args.worker, args.threads, args.batch_size)
        return
    # decode the JPEG and read the section once, in its own process: on Linux a child's peak
    # RSS (ru_maxrss) starts at its parent's RSS at fork, so the parent stays small
    subprocess.run([sys.executable, __file__, "--section", args.section, "--worker", "prepare"], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "NUMBA_NUM_THREADS": str(args.threads)}
    rows = []
    for method in METHODS:
        res = subprocess.run(
            [sys.executable, __file__, "--section", args.section, "--threads", str(args.threads),
             "--batch-size", str(args.batch_size), "--worker", method],
            capture_output=True, text=True, env=env, check=True,
        )
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    probe = ridge_probe(args.section, list(METHODS))
    import torch

    lines = [
        "# image_features benchmark",
        "",
        f"Section HER2ST {args.section}: {rows[0]['n_spots']} spots, spot diameter 100 µm, "
        f"{rows[0]['microns_per_pixel']:.3f} µm/px (from the 200 µm spot pitch) → patch "
        f"{rows[0]['patch_image_px']:.1f} px resampled to 224 px; image read from a memory-mapped .npy.",
        f"CPU: {platform.processor() or platform.machine()}, {args.threads} threads "
        f"(torch {torch.__version__}; 1-min load average at start {os.getloadavg()[0]:.1f}). "
        "**No GPU was available in this session**, so no GPU figures.",
        "",
        "| extractor | features | patches/s | seconds | peak RSS (MB) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['method']} | {r['n_features']} | {r['patches_per_s']:.1f} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |"
        for r in rows
    ]
    lines += [
        "",
        "Peak RSS is of the whole worker process (Python, torch, the model, the AnnData with all genes);",
        "the image is a memory-mapped .npy read one 4096-px tile at a time (the whole image is "
        f"{rows[0]['image_mb']:.0f} MB); RSS after loading the section, before extraction: "
        + ", ".join(f"{r['method']} {r['rss_before_mb']:.0f} MB" for r in rows) + ".",
        "",
        f"Ridge-probe sanity check (within {args.section}, 5-fold random split — optimistic, spatially",
        "autocorrelated; StandardScaler + PCA-64 + RidgeCV; log1p-normalised top-50 variance genes):",
        "",
        "| extractor | mean PCC |",
        "|---|---|",
    ]
    lines += [f"| {m} | {v:.3f} |" for m, v in probe.items()]
    lines += ["", "Reproduce:", "", "```", f"python benchmarks/bench_image_features.py --section {args.section} --threads {args.threads}", "```", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
