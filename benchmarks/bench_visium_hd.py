"""Visium HD at scale: time and peak memory of pp + predict on a synthetic 8 µm section of ~300k bins.

The section is made once and written as SpatialData zarr (like a real sample after
``spatialdata_io.visium_hd(...).write(...)``): a 548 × 548 lattice of 8 µm bins (300,304 bins,
4.4 mm a side) rotated by 0.5°, a synthetic H&E of 16,000 × 16,000 px at 0.2738 µm/px
(Visium HD's microscope resolution; pink stroma with purple nuclei whose density varies
across the slide, made tile by tile, never whole in memory), a 5-level pyramid, and Poisson
counts of 50 genes driven by the local nucleus density. Then, in a fresh process:

    process 1: read.spatialdata (lazy) → pp.segment_nuclei → pp.bin_nuclei_features(context=1)
               → pp.image_features(texture, 32 µm patches at 32 px) → pp.lattice_graph → h5ad
    process 2: tl.fit on a band of 12 lattice rows (timed, not part of pp + predict)
    process 3: tl.predict on all bins (and tl.evaluate away from the training band)

Each step's wall time and its process's peak RSS during it (sampled from /proc every 50 ms)
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
CROP_ROWS = 12  # training band: lattice rows 0..11 (all columns: the density pattern varies along x)
MODALITIES = ("texture", "morphology", "topology")
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
    n = rng.poisson(9000 * area_mm2)  # candidates at the peak density, thinned to the local density
    cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
    keep = rng.uniform(0, 9000, n) < density(x0 + cx, y0 + cy, side_px)
    cx, cy, n = cx[keep], cy[keep], int(keep.sum())
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
    t = np.deg2rad(0.5)
    rot = pitch * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    rows, cols = np.divmod(np.arange(bins_per_side**2), bins_per_side)
    xy = np.column_stack([cols, rows]) @ rot.T
    xy += pitch - xy.min(0)  # one bin of margin on every side
    side_px = int(np.ceil(xy.max() + pitch))
    nb = -(-side_px // CHUNK)
    image = da.map_blocks(lambda block_id=None: he_tile(block_id, side_px), dtype=np.uint8,
                          chunks=(tuple(min(CHUNK, side_px - i * CHUNK) for i in range(nb)),) * 2 + ((3,),))
    half = pitch / 2
    squares = shapely.box(xy[:, 0] - half, xy[:, 1] - half, xy[:, 0] + half, xy[:, 1] + half)
    shapes = ShapesModel.parse(GeoDataFrame(geometry=squares, index=np.arange(len(xy))),
                               transformations={"global": Identity()})
    rng = np.random.default_rng(1)
    dens = density(xy[:, 0], xy[:, 1], side_px) / 5000.0
    gene_a = rng.uniform(-2, 2, N_GENES)
    rates = rng.uniform(0.5, 4.0, N_GENES) * np.exp(np.outer(dens - 1, gene_a))
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


def _stepper(steps: list):
    def step(name, fn):
        t0 = time.perf_counter()
        with Peak() as peak:
            out = fn()
        steps.append({"step": name, "seconds": time.perf_counter() - t0, "peak_rss_mb": peak.peak})
        print(steps[-1], flush=True)
        return out

    return step


def run_pp(path: Path, work: Path) -> list[dict]:
    """Process 1: read + every pp step on all bins; the processed section (no image) to h5ad."""
    import spatialdata as sd

    import sthisto as st

    steps: list = []
    step = _stepper(steps)
    adata = step("read.spatialdata (lazy image)", lambda: st.read.spatialdata(
        sd.read_zarr(path), table_key="square_008um", spot_diameter_um=BIN_UM))
    step("pp.segment_nuclei (2 threads)", lambda: st.pp.segment_nuclei(adata, n_jobs=2))
    step("pp.bin_nuclei_features (context=1)", lambda: st.pp.bin_nuclei_features(adata, context=1))
    step("pp.image_features (texture, 32 µm → 32 px)", lambda: st.pp.image_features(
        adata, model="texture", patch_um=32.0, patch_px=32, batch_size=1024))
    step("pp.lattice_graph", lambda: st.pp.lattice_graph(adata))
    n_nuclei = len(adata.uns["sthisto_nuclei"]["nuclei"])
    del adata.uns["spatial"], adata.uns["sthisto_nuclei"]  # the image stays in the zarr
    adata.write_h5ad(work / "section.h5ad")
    steps.append({"n_nuclei": n_nuclei, "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return steps


def run_fit(work: Path, crop_rows: int) -> list[dict]:
    """Process 2 (not part of pp + predict): train on a band of bins across the section."""
    import anndata as ad

    import sthisto as st

    steps: list = []
    step = _stepper(steps)
    adata = ad.read_h5ad(work / "section.h5ad")
    train = adata[(adata.obs["array_row"] < crop_rows).to_numpy()].copy()
    st.pp.lattice_graph(train)
    model = step(f"tl.fit on a {train.n_obs:,}-bin band (rows < {crop_rows}), 30 epochs", lambda: st.tl.fit(
        [train], genes=list(adata.var_names), modalities=MODALITIES, epochs=30, lr=3e-3, use_go=False,
        progress=False))
    model.save(work / "model", overwrite=True)
    return steps


def run_predict(work: Path) -> list[dict]:
    """Process 3: load the processed section and the model, predict all bins."""
    import anndata as ad

    import sthisto as st

    steps: list = []
    step = _stepper(steps)
    adata = ad.read_h5ad(work / "section.h5ad")
    model = st.tl.M2TGLGO.load(work / "model")
    step("tl.predict (all bins)", lambda: st.tl.predict(adata, model))
    held_out = (adata.obs["array_row"] >= 2 * CROP_ROWS).to_numpy()
    test = adata[held_out].copy()
    st.tl.evaluate(test)
    steps.append({"median_pcc": float(np.nanmedian(test.var["sthisto_pcc"])), "n_test": int(held_out.sum()),
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return steps


def _subprocess(part: str, path: Path, work: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, __file__, "--part", part, "--zarr", str(path), "--work", str(work)],
                          capture_output=True, text=True, check=False)
    print(proc.stdout, flush=True)
    if proc.returncode:
        sys.exit(proc.stderr[-4000:])
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bins-per-side", type=int, default=548)
    parser.add_argument("--zarr", default="/tmp/sthisto_bench_visium_hd.zarr")
    parser.add_argument("--work", default="/tmp/sthisto_bench_visium_hd")
    parser.add_argument("--part", choices=["all", "pp", "fit", "predict"], default="all")
    args = parser.parse_args()
    path, work = Path(args.zarr), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    parts = {"pp": lambda: run_pp(path, work), "fit": lambda: run_fit(work, CROP_ROWS),
             "predict": lambda: run_predict(work)}
    if args.part != "all":
        print("RESULT " + json.dumps(parts[args.part]()))
        return
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    made = make_section(path, args.bins_per_side)
    made["make_s"] = time.perf_counter() - t0
    print(made, flush=True)
    pp_steps = _subprocess("pp", path, work)
    pp_summary = pp_steps.pop()
    fit_steps = _subprocess("fit", path, work)
    pred_steps = _subprocess("predict", path, work)
    pred_summary = pred_steps.pop()
    load1 = os.getloadavg()
    measured = pp_steps + pred_steps
    total = sum(s["seconds"] for s in measured)
    peak = max(s["peak_rss_mb"] for s in measured)
    lines = [
        "# Visium HD at scale (synthetic 8 µm section)",
        "",
        f"{made['n_bins']:,} bins of 8 µm ({args.bins_per_side}² lattice, rotated 0.5°), H&E "
        f"{made['image_px']:,} × {made['image_px']:,} px at {MPP} µm/px (5-level pyramid, zarr), "
        f"{N_GENES} genes, {pp_summary['n_nuclei']:,} nuclei segmented. Section made and written in "
        f"{made['make_s']:.0f} s. {platform.machine()}, {os.cpu_count()} cores; measured under load "
        f"{load0[0]:.1f} → {load1[0]:.1f} (other jobs shared the cores, so times are upper bounds). "
        "Reproduce: `python benchmarks/bench_visium_hd.py`.",
        "",
        "pp and predict run in separate fresh processes (pp writes the processed section to h5ad, "
        "predict reads it with the saved model), so each peak RSS is that step's own process.",
        "",
        "| step | wall time | peak RSS (process, during the step) |",
        "|---|---|---|",
        *[f"| {s['step']} | {s['seconds']:.1f} s | {s['peak_rss_mb']:,.0f} MB |" for s in measured],
        f"| **pp + predict** | **{total:.0f} s** | **{peak:,.0f} MB** |",
        *[f"| {s['step']} (not in pp + predict) | {s['seconds']:.1f} s | {s['peak_rss_mb']:,.0f} MB |"
          for s in fit_steps],
        "",
        f"Median per-gene PCC on the {pred_summary['n_test']:,} bins at least {CROP_ROWS} rows away from "
        f"the training band: {pred_summary['median_pcc']:.3f} (the counts follow the nucleus density by "
        "construction; this checks that the pipeline carries signal at this size, it is no accuracy claim).",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
