"""Nuclei benchmarks: kernel vs regionprops, segmentation throughput, full HER2ST sections, 20k² memmap.

Run from the repository root (reads ../shared/data):

    python benchmarks/bench_nuclei.py            # all parts, writes benchmarks/results/nuclei.md
    python benchmarks/bench_nuclei.py --part kernel|throughput|sections|memmap

Each heavy part runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "her2st"
RESULTS = ROOT / "benchmarks" / "results" / "nuclei.md"
os.environ.setdefault("STHISTO_PROGRESS", "0")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AnonPeak:
    """Sample RssAnon (anonymous resident memory, excludes file-backed memmap pages)."""

    def __enter__(self):
        import threading

        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        self.peak = max(self.peak, int(line.split()[1]) / 1024)
            self._stop.wait(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _read_c2() -> np.ndarray:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return np.asarray(Image.open(DATA / "images" / "C2.jpg").convert("RGB"))


def part_kernel() -> dict:
    from skimage.measure import regionprops_table

    from sthisto.pp import nuclei

    img = _read_c2()
    mpp = 0.688
    tile = np.ascontiguousarray(img[4500:7100, 4000:6600])
    labels = nuclei.segment_tile(tile, microns_per_pixel=mpp)
    n = int(labels.max())
    nuclei.measure(labels[:64, :64])  # warm the numba cache
    t_numba = []
    for _ in range(5):
        t = time.perf_counter()
        nuclei.measure(labels)
        t_numba.append(time.perf_counter() - t)
    props = ("label", "area", "perimeter", "centroid", "bbox", "axis_major_length",
             "axis_minor_length", "eccentricity", "orientation", "extent")
    t = time.perf_counter()
    regionprops_table(labels, properties=props)
    t_sk = time.perf_counter() - t
    return {"n_nuclei": n, "shape": list(labels.shape), "numba_s": min(t_numba),
            "skimage_s": t_sk, "speedup": t_sk / min(t_numba)}


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _split_timings(labels: np.ndarray, repeat: int) -> dict:
    """Seconds of the moment/perimeter passes, the convex-hull passes and the skeletons."""
    from sthisto.pp import _kernels as K

    labels = np.ascontiguousarray(labels.astype(np.int32))
    K.measure(labels[:64, :64])  # warm the numba cache
    lut, n = K._present_lut(labels, int(labels.max()))
    area, ref, bbox, sums, perim = K._accumulate(labels, lut, n, K._PERIMETER_CLASS)
    present = np.flatnonzero(lut >= 0)

    def base():
        out = K._accumulate(labels, lut, n, K._PERIMETER_CLASS)
        K._finalize(*out)

    def convex():
        off, lo, hi = K._row_extremes(labels, lut, bbox)
        K._convex_features(lo, hi, off, bbox, K._PERIMETER_CLASS)

    return {"n_nuclei": int(n), "base_s": _best(base, repeat), "convex_s": _best(convex, repeat),
            "skeleton_s": _best(lambda: K._skeleton_pixels(labels, present, bbox), max(1, repeat // 2)),
            "measure_s": _best(lambda: K.measure(labels), max(1, repeat // 2))}


def part_convex() -> dict:
    """Convex area/solidity/convex perimeter/skeleton length: numba vs skimage, share of a section."""
    import tempfile

    from skimage.measure import perimeter, regionprops, regionprops_table
    from skimage.morphology import skeletonize

    import sthisto as st
    from sthisto.pp import nuclei

    img = _read_c2()
    tile = np.ascontiguousarray(img[4500:7100, 4000:6600])
    labels = nuclei.segment_tile(tile, microns_per_pixel=0.688)
    del img
    out = {"tile": _split_timings(labels, 5), "shape": list(labels.shape)}
    t = time.perf_counter()
    regionprops_table(labels, properties=("label", "area_convex", "solidity"))
    out["regionprops_convex_s"] = time.perf_counter() - t
    t = time.perf_counter()
    for p in regionprops(labels):
        perimeter(p.image_convex)
        np.count_nonzero(skeletonize(p.image))
    out["skimage_loop_s"] = time.perf_counter() - t  # convex_hull_image + perimeter + skeletonize
    # full section: the extra features' share of segment_nuclei + nuclei_features
    name = "C2"
    adata = st.read.legacy_st(DATA / "counts" / f"{name}.tsv.gz", DATA / "spots" / f"{name}_selection.tsv",
                              DATA / "images" / f"{name}.jpg", load_fullres=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.npy"
        t = time.perf_counter()
        st.pp.segment_nuclei(adata, n_jobs=2, labels_path=path)
        out["section_segment_s"] = time.perf_counter() - t
        t = time.perf_counter()
        st.pp.nuclei_features(adata)
        out["section_features_s"] = time.perf_counter() - t
        out["section"] = _split_timings(np.load(path), 2)
    out["section_name"] = name
    return out


def part_throughput(n_jobs: int, backend: str) -> dict:
    from sthisto.pp import nuclei

    img = _read_c2()
    region = np.ascontiguousarray(img[3500:7596, 3000:7096])  # 4096² of tissue
    mpp = 0.688
    thr = nuclei.hematoxylin_threshold(region, microns_per_pixel=mpp)
    nuclei.segment_image(region[:600, :600], microns_per_pixel=mpp, threshold=thr)  # warm-up
    t = time.perf_counter()
    table = nuclei.segment_image(region, microns_per_pixel=mpp, threshold=thr, tile_size=1024,
                                 n_jobs=n_jobs, backend=backend)
    dt = time.perf_counter() - t
    return {"n_jobs": n_jobs, "backend": backend, "megapixels": region.shape[0] * region.shape[1] / 1e6,
            "seconds": dt, "mp_per_s": region.shape[0] * region.shape[1] / 1e6 / dt, "n_nuclei": len(table)}


def part_section(name: str, n_jobs: int) -> dict:
    import sthisto as st

    counts = DATA / "counts" / f"{name}.tsv.gz"
    spots = DATA / "spots" / f"{name}_selection.tsv"
    t0 = time.perf_counter()
    adata = st.read.legacy_st(counts, spots, DATA / "images" / f"{name}.jpg", load_fullres=True)
    t_read = time.perf_counter() - t0
    t = time.perf_counter()
    st.pp.segment_nuclei(adata, n_jobs=n_jobs)
    t_seg = time.perf_counter() - t
    t = time.perf_counter()
    st.pp.nuclei_features(adata)
    t_feat = time.perf_counter() - t
    m = adata.obsm["sthisto_morphology"]
    counts_per_spot = m["nucleus_count"].to_numpy()
    img = adata.uns["spatial"][next(iter(adata.uns["spatial"]))]["images"]["fullres"]
    q = np.percentile(counts_per_spot, [0, 25, 50, 75, 100])
    return {"section": name, "shape": list(img.shape[:2]), "n_spots": adata.n_obs,
            "mpp": adata.uns["sthisto_nuclei"]["params"]["microns_per_pixel"],
            "n_tiles": adata.uns["sthisto_nuclei"]["params"]["n_tiles"],
            "n_nuclei": len(adata.uns["sthisto_nuclei"]["nuclei"]), "read_s": t_read,
            "segment_s": t_seg, "features_s": t_feat, "per_spot_quantiles": q.tolist(),
            "per_spot_mean": float(counts_per_spot.mean()),
            "empty_spots": int((counts_per_spot == 0).sum()), "peak_rss_mb": _peak_rss_mb()}


def part_make_memmap(size: int, path: str) -> dict:
    """Write a size×size RGB .npy by tiling C2 tissue (own process: its RSS is not counted)."""
    t = time.perf_counter()
    if not Path(path).exists():
        src = _read_c2()[2000:8000, 2000:7500]
        mm = np.lib.format.open_memmap(path + ".tmp", mode="w+", dtype=np.uint8, shape=(size, size, 3))
        sh, sw = src.shape[:2]
        for y in range(0, size, sh):
            for x in range(0, size, sw):
                mm[y:y + sh, x:x + sw] = src[: min(sh, size - y), : min(sw, size - x)]
        mm.flush()
        del mm, src
        os.replace(path + ".tmp", path)
    return {"make_s": time.perf_counter() - t}


def part_memmap(size: int, n_jobs: int, path: str) -> dict:
    import anndata as ad
    import pandas as pd

    import sthisto as st

    image = np.load(path, mmap_mode="r")
    mpp, pitch = 0.688, 200 / 0.688
    g = np.arange(pitch, size - pitch, pitch)
    xy = np.array([(x, y) for y in g for x in g], dtype=np.float64)
    adata = ad.AnnData(np.ones((len(xy), 1), np.float32), obs=pd.DataFrame(index=[f"s{i}" for i in range(len(xy))]))
    adata.obsm["spatial"] = xy
    adata.uns["spatial"] = {"big": {"images": {"fullres": image}, "metadata": {},
                                    "scalefactors": {"spot_diameter_fullres": 100 / mpp, "microns_per_pixel": mpp}}}
    rss0 = _peak_rss_mb()
    with AnonPeak() as anon:
        t = time.perf_counter()
        st.pp.segment_nuclei(adata, n_jobs=n_jobs, region="all")
        t_seg = time.perf_counter() - t
        t = time.perf_counter()
        st.pp.nuclei_features(adata)
        t_feat = time.perf_counter() - t
    return {"size": size, "segment_s": t_seg, "features_s": t_feat,
            "n_nuclei": len(adata.uns["sthisto_nuclei"]["nuclei"]), "n_spots": adata.n_obs,
            "rss_before_mb": rss0, "peak_rss_mb": _peak_rss_mb(), "peak_anon_mb": anon.peak,
            "mp_per_s": size * size / 1e6 / t_seg}


def part_figure(name: str = "C2") -> dict:
    """Nuclei outlines over H&E for the spot with most nuclei, saved with sthisto.pl.nuclei."""
    import matplotlib

    matplotlib.use("Agg")
    import sthisto as st

    adata = st.read.legacy_st(DATA / "counts" / f"{name}.tsv.gz", DATA / "spots" / f"{name}_selection.tsv",
                              DATA / "images" / f"{name}.jpg", load_fullres=True)
    st.pp.segment_nuclei(adata, n_jobs=2)
    ax = st.pl.nuclei(adata)
    out = RESULTS.parent / f"nuclei_{name}_spot.png"
    ax.figure.savefig(out, dpi=110, bbox_inches="tight")
    return {"figure": str(out.relative_to(ROOT)), "title": ax.get_title()}


def _sub(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--json", *map(str, args)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--part", default="all",
                   choices=["all", "kernel", "convex", "throughput", "sections", "memmap", "figure"])
    p.add_argument("--json", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--memmap-size", type=int, default=20000)
    p.add_argument("--memmap-path", default="/tmp/sthisto_bench_20k.npy")
    args = p.parse_args()
    if args.json is not None:  # worker mode
        kind, *rest = args.json
        fn = {"kernel": part_kernel, "convex": part_convex, "throughput": lambda j, b: part_throughput(int(j), b),
              "section": lambda s, j: part_section(s, int(j)),
              "memmap": lambda s, j, path: part_memmap(int(s), int(j), path),
              "make": lambda s, path: part_make_memmap(int(s), path), "figure": part_figure}[kind]
        print(json.dumps(fn(*rest)))
        return
    lines = [f"# Nuclei benchmarks\n\nMachine: {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores shared with other jobs (1-min load average at start: {os.getloadavg()[0]:.1f}), "
             f"Python {platform.python_version()}.\nReproduce: `python benchmarks/bench_nuclei.py --part {args.part}`\n"]
    if args.part in ("all", "kernel"):
        r = _sub("kernel")
        lines += ["## Numba kernel vs skimage.measure.regionprops_table\n",
                  "| label image | nuclei | numba (s) | regionprops_table (s) | speed-up |", "|---|---|---|---|---|",
                  f"| {r['shape'][0]}×{r['shape'][1]} (C2 tile, watershed) | {r['n_nuclei']} | {r['numba_s']:.4f} | "
                  f"{r['skimage_s']:.3f} | {r['speedup']:.0f}× |",
                  "\nSame properties on both sides: label, area, perimeter, centroid, bbox, major/minor axis, "
                  "eccentricity, orientation, extent. Numba time is the best of 5 after a warm-up.\n"]
    if args.part in ("all", "convex"):
        r = _sub("convex")
        tl, sec = r["tile"], r["section"]
        lines += ["## Convex area, solidity, convex perimeter, skeleton length\n",
                  "| label image | nuclei | moments + perimeter, numba (s) | convex hull features, numba (s) | "
                  "skeletons, skimage per object (s) | whole `measure` (s) | regionprops_table area_convex + "
                  "solidity (s) | skimage loop: convex_hull_image + perimeter + skeletonize (s) |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {r['shape'][0]}×{r['shape'][1]} (C2 tile) | {tl['n_nuclei']} | {tl['base_s']:.4f} | "
                  f"{tl['convex_s']:.4f} | {tl['skeleton_s']:.3f} | {tl['measure_s']:.3f} | "
                  f"{r['regionprops_convex_s']:.2f} | {r['skimage_loop_s']:.2f} |",
                  f"| full {r['section_name']} label image | {sec['n_nuclei']} | {sec['base_s']:.4f} | "
                  f"{sec['convex_s']:.4f} | {sec['skeleton_s']:.3f} | {sec['measure_s']:.3f} | — | — |",
                  f"\nThe four extra features: {tl['convex_s'] + tl['skeleton_s']:.3f} s here vs "
                  f"{r['skimage_loop_s']:.2f} s for skimage ({r['skimage_loop_s'] / (tl['convex_s'] + tl['skeleton_s']):.0f}×); "
                  f"the hull alone {r['regionprops_convex_s'] / tl['convex_s']:.0f}× faster than regionprops' area_convex.",
                  f"\nFull {r['section_name']} section with n_jobs=2: segment_nuclei {r['section_segment_s']:.1f} s "
                  f"(includes the measurement of every tile) + nuclei_features {r['section_features_s']:.2f} s; "
                  f"the convex hull features and skeletons of all its nuclei cost "
                  f"{sec['convex_s'] + sec['skeleton_s']:.2f} s serially "
                  f"({100 * (sec['convex_s'] + sec['skeleton_s']) / (r['section_segment_s'] + r['section_features_s']):.1f}%"
                  " of segment + features), so there is no switch to skip them. Values equal skimage "
                  "(tests/pp/test_kernels.py). Numba times are the best of 5 (tile) or 2 (section) after a warm-up.\n"]
    if args.part in ("all", "throughput"):
        rows = [_sub("throughput", j, b) for j, b in ((1, "threads"), (2, "threads"), (2, "processes"))]
        lines += ["## Segmentation throughput (4096×4096 tissue region of C2, tiles of 1024)\n",
                  "| workers | backend | seconds | MP/s | nuclei |", "|---|---|---|---|---|"]
        lines += [f"| {r['n_jobs']} | {r['backend']} | {r['seconds']:.1f} | {r['mp_per_s']:.2f} | {r['n_nuclei']} |" for r in rows]
        lines.append("")
    if args.part in ("all", "sections"):
        rows = [_sub("section", s, 2) for s in ("C2", "C3", "C4")]
        lines += ["## Full HER2ST sections: segment_nuclei + nuclei_features, n_jobs=2 (threads)\n",
                  "| section | image | µm/px | spots | tiles | nuclei | segment (s) | features (s) | total (s) | peak RSS (MB) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['section']} | {r['shape'][1]}×{r['shape'][0]} | {r['mpp']:.3f} | {r['n_spots']} | {r['n_tiles']} | "
                  f"{r['n_nuclei']} | {r['segment_s']:.1f} | {r['features_s']:.2f} | {r['segment_s'] + r['features_s']:.1f} | "
                  f"{r['peak_rss_mb']:.0f} |" for r in rows]
        lines += ["\nPeak RSS includes the decoded JPEG held in memory (~275 MB) and the reader.\n",
                  "### Nuclei per spot (centroid in the 100 µm spot disk)\n",
                  "| section | min | 25% | median | 75% | max | mean | spots without nuclei |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['section']} | " + " | ".join(f"{v:.0f}" for v in r["per_spot_quantiles"])
                  + f" | {r['per_spot_mean']:.1f} | {r['empty_spots']} |" for r in rows]
        lines.append("")
    if args.part in ("all", "memmap"):
        _sub("make", args.memmap_size, args.memmap_path)
        r = _sub("memmap", args.memmap_size, 2, args.memmap_path)
        lines += [f"## {r['size']}×{r['size']} memory-mapped RGB (.npy, C2 tissue tiled), region='all', n_jobs=2\n",
                  "| image | nuclei | spots | segment (s) | MP/s | features (s) | peak RSS (MB) | peak anonymous RSS (MB) |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {r['size']}² ({r['size'] ** 2 * 3 / 1e9:.1f} GB on disk) | {r['n_nuclei']} | {r['n_spots']} | "
                  f"{r['segment_s']:.0f} | {r['mp_per_s']:.2f} | {r['features_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                  f"{r['peak_anon_mb']:.0f} |",
                  "\nPeak RSS (ru_maxrss) counts the memory-mapped pages that were read (file-backed, "
                  "reclaimable); peak anonymous RSS (RssAnon sampled every 50 ms) is the memory the "
                  "process itself allocated. The slide is written by a separate process first.\n"]
    if args.part in ("all", "figure"):
        r = _sub("figure", "C2")
        lines += [f"## Nuclei outlines (`sthisto.pl.nuclei`, C2, {r['title']})\n", f"![nuclei]({Path(r['figure']).name})\n"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.part == "all":
        RESULTS.write_text(text)
    else:
        with RESULTS.open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
