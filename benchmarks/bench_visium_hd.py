"""Visium HD at scale: time and peak memory of pp + predict on a synthetic 8 µm section of ~300k bins.

The section is made once and written as SpatialData zarr (like a real sample after
``spatialdata_io.visium_hd(...).write(...)``): a 548 × 548 lattice of 8 µm bins (300,304 bins,
4.4 mm a side) rotated by 0.5°, a synthetic H&E of 16,000 × 16,000 px at 0.2738 µm/px
(Visium HD's microscope resolution; pink stroma with purple nuclei whose density varies
across the slide, made tile by tile, never whole in memory), a 5-level pyramid, and Poisson
counts of 50 genes driven by the local nucleus density. Then, in a fresh process:

    read.spatialdata (lazy) → pp.segment_nuclei → pp.bin_nuclei_features(context=1)
    → pp.image_features(texture, 32 µm patches at 32 px) → pp.lattice_graph
    → tl.fit on a 10k-bin crop (timed, not part of pp + predict) → tl.predict on all bins

Each step's wall time and the process's peak RSS during it (sampled from /proc every 50 ms)
go to benchmarks/results/visium_hd.md. Run: ``python benchmarks/bench_visium_hd.py``
(``--bins-per-side 100`` for a quick smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "visium_hd.md"
MPP = 0.2738
BIN_UM = 8.0
CHUNK = 2048
N_GENES = 50
os.environ.setdefault("STHISTO_PROGRESS", "0")


def density(x_px, y_px, side_px):
    """Nuclei per mm² at full-res pixel (x, y): smooth bumps between 1,000 and 9,000."""
    u, v = x_px / side_px, y_px / side_px
    return 5000 + 4000 * np.sin(2 * np.pi * 1.5 * u) * np.cos(2 * np.pi * v)


def he_tile(block_id, side_px: int, seed: int = 0) -> np.ndarray:
    """One (CHUNK, CHUNK, 3) uint8 tile of the synthetic H&E, deterministic per tile."""
    by, bx = block_id[0], block_id[1]
    y0, x0 = by * CHUNK, bx * CHUNK
    h, w = min(CHUNK, side_px - y0), min(CHUNK, side_px - x0)
    rng = np.random.default_rng([seed, by, bx])
    tile = np.empty((h, w, 3), np.float32)
    tile[...] = (232, 178, 205)
    tile += rng.normal(0, 6, size=(h, w, 1))
    area_mm2 = h * w * (MPP / 1000) ** 2
    n = rng.poisson(density(x0 + w / 2, y0 + h / 2, side_px) * area_mm2)
    cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
    a = rng.uniform(3.0, 5.5, n) / MPP
    b = a * rng.uniform(0.55, 1.0, n)
    th = rng.uniform(0, np.pi, n)
    for i in range(n):
        r = int(np.ceil(a[i])) + 1
        ys, xs = slice(max(int(cy[i]) - r, 0), min(int(cy[i]) + r, h)), slice(max(int(cx[i]) - r, 0), min(int(cx[i]) + r, w))
        yy, xx = np.mgrid[ys, xs]
        dx, dy = xx - cx[i], yy - cy[i]
        u = (dx * np.cos(th[i]) + dy * np.sin(th[i])) / a[i]
        v = (-dx * np.sin(th[i]) + dy * np.cos(th[i])) / b[i]
        inside = (u * u + v * v) <= 1.0
        tile[ys, xs][inside] = (95, 55, 140)
    return np.clip(tile, 0, 255).astype(np.uint8)


def make_section(path: Path, bins_per_side: int) -> dict:
    import anndata as ad
    import dask.array as da
    import pandas as pd
    import scipy.sparse as sp
    import shapely
    from geopandas import GeoDataFrame
    from spatialdata import SpatialData
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity

    pitch = BIN_UM / MPP
    side_px = int(np.ceil((bins_per_side + 2) * pitch))
    nb = -(-side_px // CHUNK)
    image = da.map_blocks(lambda block_id=None: he_tile(block_id, side_px), dtype=np.uint8,
                          chunks=(tuple(min(CHUNK, side_px - i * CHUNK) for i in range(nb)),) * 2 + ((3,),))
    t = np.deg2rad(0.5)
    rot = pitch * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    rows, cols = np.divmod(np.arange(bins_per_side**2), bins_per_side)
    xy = (np.column_stack([cols, rows]) + 0.5) @ rot.T + [pitch, pitch * 0.6]
    half = pitch / 2
    squares = shapely.box(xy[:, 0] - half, xy[:, 1] - half, xy[:, 0] + half, xy[:, 1] + half)
    shapes = ShapesModel.parse(GeoDataFrame(geometry=squares, index=np.arange(len(xy))),
                               transformations={"global": Identity()})
    rng = np.random.default_rng(1)
    dens = density(xy[:, 0], xy[:, 1], side_px) / 5000.0
    gene_a = rng.uniform(-1, 1, N_GENES)
    rates = rng.uniform(0.2, 3.0, N_GENES) * np.exp(np.outer(dens - 1, gene_a))
    counts = sp.csr_matrix(rng.poisson(rates).astype(np.float32))
    obs = pd.DataFrame({"in_tissue": 1, "array_row": rows, "array_col": cols, "location_id": np.arange(len(xy)),
                        "region": pd.Categorical(["bins_square_008um"] * len(xy))},
                       index=[f"s_008um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols, strict=True)])
    table = TableModel.parse(ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=[f"gene{i}" for i in range(N_GENES)])),
                             region="bins_square_008um", region_key="region", instance_key="location_id")
    img = Image2DModel.parse(image.transpose(2, 0, 1), dims=("c", "y", "x"), rgb=True, scale_factors=[2, 2, 2, 2],
                             transformations={"global": Identity()}, chunks=(3, CHUNK, CHUNK))
    sdata = SpatialData(images={"he": img}, shapes={"bins_square_008um": shapes}, tables={"square_008um": table})
    t0 = time.perf_counter()
    sdata.write(path, overwrite=True)
    return {"n_bins": len(xy), "image_px": side_px, "write_s": time.perf_counter() - t0}


class Peak:
    """Peak VmRSS of this process while the block runs (sampled every 50 ms)."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _rss(self):
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def pipeline(path: Path) -> list[dict]:
    import spatialdata as sd

    import sthisto as st

    steps = []

    def step(name, fn):
        t0 = time.perf_counter()
        with Peak() as peak:
            out = fn()
        steps.append({"step": name, "seconds": time.perf_counter() - t0, "peak_rss_mb": peak.peak})
        print(steps[-1], flush=True)
        return out

    adata = step("read.spatialdata (lazy image)", lambda: st.read.spatialdata(
        sd.read_zarr(path), table_key="square_008um", spot_diameter_um=BIN_UM))
    step("pp.segment_nuclei (2 threads)", lambda: st.pp.segment_nuclei(adata, n_jobs=2))
    step("pp.bin_nuclei_features (context=1)", lambda: st.pp.bin_nuclei_features(adata, context=1))
    step("pp.image_features (texture, 32 µm → 32 px)", lambda: st.pp.image_features(
        adata, model="texture", patch_um=32.0, patch_px=32, batch_size=1024))
    step("pp.lattice_graph", lambda: st.pp.lattice_graph(adata))
    mods = ("texture", "morphology", "topology")
    crop = (adata.obs["array_row"] < 100) & (adata.obs["array_col"] < 100)

    def fit():
        train = adata[crop.to_numpy()].copy()
        st.pp.lattice_graph(train)
        return st.tl.fit([train], genes=list(adata.var_names), modalities=mods, epochs=20, lr=1e-3,
                         use_go=False, progress=False)

    model = step(f"tl.fit on a {int(crop.sum()):,}-bin crop, 20 epochs (not in pp + predict)", fit)
    step("tl.predict (all bins)", lambda: st.tl.predict(adata, model))
    step("tl.evaluate", lambda: st.tl.evaluate(adata))
    steps.append({"n_nuclei": len(adata.uns["sthisto_nuclei"]["nuclei"]),
                  "median_pcc": float(np.nanmedian(adata.var["sthisto_pcc"])),
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bins-per-side", type=int, default=548)
    parser.add_argument("--zarr", default="/tmp/sthisto_bench_visium_hd.zarr")
    parser.add_argument("--part", choices=["all", "pipeline"], default="all")
    args = parser.parse_args()
    path = Path(args.zarr)
    if args.part == "pipeline":
        print("RESULT " + json.dumps(pipeline(path)))
        return
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    made = make_section(path, args.bins_per_side)
    made["make_s"] = time.perf_counter() - t0
    print(made, flush=True)
    proc = subprocess.run([sys.executable, __file__, "--part", "pipeline", "--zarr", str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(proc.stderr[-4000:])
    steps = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    load1 = os.getloadavg()
    summary = steps.pop()
    pp_predict = [s for s in steps if not s["step"].startswith(("tl.fit", "tl.evaluate"))]
    total = sum(s["seconds"] for s in pp_predict)
    peak = max(s["peak_rss_mb"] for s in pp_predict)
    lines = [
        "# Visium HD at scale (synthetic 8 µm section)",
        "",
        f"{made['n_bins']:,} bins of 8 µm ({args.bins_per_side}² lattice, rotated 0.5°), H&E "
        f"{made['image_px']:,} × {made['image_px']:,} px at {MPP} µm/px (5-level pyramid, zarr), "
        f"{N_GENES} genes, {summary['n_nuclei']:,} nuclei segmented. Made and written in {made['make_s']:.0f} s. "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; measured under load "
        f"{load0[0]:.1f} → {load1[0]:.1f} (other jobs shared the cores). "
        "Reproduce: `python benchmarks/bench_visium_hd.py`.",
        "",
        "| step | wall time | peak RSS during the step |",
        "|---|---|---|",
        *[f"| {s['step']} | {s['seconds']:.1f} s | {s['peak_rss_mb']:,.0f} MB |" for s in steps],
        f"| **pp + predict** | **{total:.0f} s** | **{peak:,.0f} MB** |",
        "",
        f"Process peak RSS (ru_maxrss): {summary['ru_maxrss_mb']:,.0f} MB. Median per-gene PCC of the "
        f"crop-trained model over all bins: {summary['median_pcc']:.3f} (the counts follow the nucleus "
        "density by construction; this checks the pipeline carries signal, it is no accuracy claim).",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
