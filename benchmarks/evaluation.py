"""Wall time of sthisto.tl.cross_validate for the baselines on three synthetic sections.

Run:  python benchmarks/evaluation.py  (writes benchmarks/results/evaluation.md)

Sections: sthisto.datasets.synthetic(n_spots=600, n_genes=200, seed=0/1/2). Features are
obsm["sthisto_deep"] = tanh(planted latents @ W) + noise (24 columns), a stand-in for the
real feature pipeline so that this benchmark times the evaluation harness only.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np

import sthisto as st

OUT = Path(__file__).parent / "results" / "evaluation.md"
N_SPOTS, N_GENES, N_TOP = 600, 200, 50
PROTOCOLS = ["paper", "selected", "hest"]


def sections():
    w = np.random.default_rng(321).normal(size=(3, 24))
    out = []
    for seed in (0, 1, 2):
        a = st.datasets.synthetic(n_spots=N_SPOTS, n_genes=N_GENES, seed=seed)
        z = a.uns["sthisto_synthetic"]["latents"].to_numpy()
        rng = np.random.default_rng(seed + 500)
        a.obsm["sthisto_deep"] = np.tanh(z @ w) + 0.3 * rng.normal(size=(a.n_obs, 24))
        out.append(a)
    return out


def main() -> None:
    st.settings.progress_bar = False
    adatas = sections()
    lines = [
        "# cross_validate wall time (baselines, synthetic sections)",
        "",
        f"Three `sthisto.datasets.synthetic` sections ({N_SPOTS} spots, {N_GENES} genes, seeds 0-2), "
        f"leave-one-section-out (3 folds), protocols {PROTOCOLS} (HVG/HEG top-{N_TOP}, "
        f"`selected` over all {N_GENES} genes), 24 feature columns. "
        f"Python {platform.python_version()}, {platform.machine()}, CPU; median of 3 runs.",
        "",
        "| method | wall time (s) | fit time (s, sum) | paper PCC HVG (mean over folds) | paper PCC HEG | selected PCC | hest PCC |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in ("ridge", "knn", "mean"):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            df = st.tl.cross_validate(adatas, method=method, protocol=PROTOCOLS, n_top=N_TOP,
                                      modalities=["deep"], n_candidates=None)
            times.append(time.perf_counter() - t0)
        fit_s = sum(t["fit_s"] for t in df.attrs["timings"])
        pcc = df[df.metric == "pcc"].groupby(["gene_set", "protocol"])["value"].mean()

        def fmt(key, pcc=pcc):
            v = pcc.get(key, np.nan)
            return "undefined" if np.isnan(v) else f"{v:.3f}"

        lines.append(
            f"| {method} | {np.median(times):.2f} | {fit_s:.2f} | {fmt(('hvg', 'paper'))} | "
            f"{fmt(('heg', 'paper'))} | {fmt(('candidates', 'selected'))} | {fmt(('hvg', 'hest'))} |"
        )
        print(lines[-1], file=sys.stderr)
    lines += ["", "Reproduce: `python benchmarks/evaluation.py`", ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
