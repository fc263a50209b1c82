"""One prepared GPU run (< 8 min on one GPU): demo fold, large-section epochs, ResNet-50 throughput.

Needs CUDA: without it the script stops at once with exit code 2 and says so. Steps:

1. a demo fold on CUDA: M2TGLGO (default recipe) trained on HER2ST C2 + C3, predicting C4
   (the ``sthisto demo`` features, prepared on the CPU and cached under
   ``benchmarks/results/scale_raw/demo_cache``): fit time and held-out mean per-gene PCC;
2. one training epoch at 100k and 300k spots on CUDA (the synthetic sections of
   ``benchmarks/scale.py``), full batch and mini-batch (``batch_size=16384``), and a
   streamed prediction of each: s/epoch, predict time, peak GPU memory;
3. ResNet-50 patches/s with float16 autocast through ``pp.image_features`` (the library's
   deep path, random weights: throughput only), skipped with a line if it cannot run.

Figures go to ``benchmarks/results/gpu.md`` (and are printed).

    python benchmarks/gpu.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (the synthetic sections and demo cache)

RESULT = scale.ROOT / "benchmarks" / "results" / "gpu.md"
GPU_BATCH = 16_384
os.environ.setdefault("STHISTO_PROGRESS", "0")


def _require_cuda():
    import torch

    if not torch.cuda.is_available():
        print(f"benchmarks/gpu.py needs a CUDA GPU, but torch {torch.__version__} reports none "
              "(torch.cuda.is_available() is False); run it on a GPU machine.", file=sys.stderr)
        sys.exit(2)
    return torch


def _gib(n: int) -> float:
    return n / 2**30


def demo_fold(torch) -> str:
    import sthisto as st
    from sthisto.cli._demo import MODALITIES
    from sthisto.tl._data import log_targets
    from sthisto.tl._metrics import mean_pearson

    adatas, genes = scale._demo_sections(scale.RAW / "demo_cache")
    hvg = st.tl.select_genes(adatas[:2], flavor="hvg", n_top=50)
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    model = st.tl.fit(adatas[:2], genes=hvg, modalities=MODALITIES, gene_prior=genes, device="cuda", seed=0,
                      progress=False)
    fit_s = time.perf_counter() - t
    pcc = mean_pearson(log_targets(adatas[2], hvg), model.predict(adatas[2]))
    return (f"| demo fold (train C2+C3, test C4, top-50 HVG, default recipe) | {fit_s:.1f} s fit | "
            f"PCC {pcc:.3f} | {_gib(torch.cuda.max_memory_allocated()):.2f} |")


def section_epochs(torch, n_spots: int) -> list[str]:
    import sthisto as st

    adata = scale.hex_section(n_spots)
    rows = []
    for bs in (None, GPU_BATCH):
        torch.cuda.reset_peak_memory_stats()
        model = st.tl.fit(adata, genes=list(adata.var_names), epochs=2, batch_size=bs, device="cuda",
                          **scale.FIT_KW)
        epoch = float(np.median(model.history["time_s"]))
        mem = _gib(torch.cuda.max_memory_allocated())
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        model.predict(adata, batch_size=GPU_BATCH)
        torch.cuda.synchronize()
        pred_s = time.perf_counter() - t
        mode = "full batch" if bs is None else f"batch_size={bs}"
        rows.append(f"| {n_spots:,} spots, {mode} | {epoch:.2f} s/epoch | predict {pred_s:.1f} s | "
                    f"{mem:.2f} (fit), {_gib(torch.cuda.max_memory_allocated()):.2f} (predict) |")
    return rows


def resnet_throughput(torch, n_spots: int) -> str:
    import sthisto as st

    try:
        adata = st.datasets.synthetic(n_spots=n_spots, n_genes=10, seed=0)
        st.pp.image_features(adata, model="resnet50", weights=None, device="cuda", amp=True, batch_size=256,
                             patch_px=224)  # warm-up: cudnn autotune, allocator
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        t = time.perf_counter()
        st.pp.image_features(adata, model="resnet50", weights=None, device="cuda", amp=True, batch_size=256,
                             patch_px=224)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
    except Exception as err:  # noqa: BLE001 - report and go on: the other figures stand
        return f"| ResNet-50 patches/s (AMP) | skipped: {type(err).__name__}: {err} | | |"
    return (f"| ResNet-50 patches/s (AMP, 224 px, batch 256, incl. patch reading) | {n_spots / dt:.0f} patches/s | "
            f"{n_spots} patches in {dt:.1f} s | {_gib(torch.cuda.max_memory_allocated()):.2f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10k/30k spots instead of 100k/300k")
    args = p.parse_args(argv)
    torch = _require_cuda()
    t0 = time.perf_counter()
    rows = [demo_fold(torch)]
    for n in ((10_000, 30_000) if args.quick else (100_000, 300_000)):
        rows += section_epochs(torch, n)
    rows.append(resnet_throughput(torch, 500 if args.quick else 4000))
    name = torch.cuda.get_device_name(0)
    text = "\n".join([
        "# GPU benchmark", "",
        f"Device: {name}, torch {torch.__version__}; total {time.perf_counter() - t0:.0f} s. "
        "Sections as in `benchmarks/scale.py` (default recipe with ranking + reconstruction losses).", "",
        "| what | time | detail | peak GPU memory (GiB) |", "|---|---|---|---|", *rows, ""])
    RESULT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
