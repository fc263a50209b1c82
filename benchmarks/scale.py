"""Scale-out benchmark of M2TGLGO training and prediction: mini-batches, streaming, cost vs spots.

Parts (each case runs in a fresh subprocess; its wall time and peak RSS — sampled from
/proc every 20 ms, and ``getrusage`` — are recorded as JSON under ``--raw``):

- ``demo``: leave-one-section-out ``tl.cross_validate`` of M2TGLGO on the bundled HER2ST
  demo (C2, C3, C4; the ``sthisto demo`` features), full batch vs mini-batch
  (``batch_size``), held-out mean per-gene PCC (``paper`` protocol, HVG and HEG sets);
  full batch with two seeds gives the seed-to-seed noise.
- ``train``: one synthetic section of N spots on a hexagonal (Visium-like) lattice, spot
  graph by the library's ``pp.spatial_graph`` (6-NN), latent-driven features (deep 128-d,
  morphology 17-d, topology 5-d) and Poisson counts of 50 genes; ``tl.fit`` with
  ``batch_size`` (default recipe, ranking and reconstruction losses on): s/epoch and peak RSS.
- ``predict``: a model (trained once on a 20k-spot section) predicts a section of N spots
  with ``tl.predict`` (streamed: blocks of 16,384 spots above 50k): time and peak RSS.
- ``report``: the markdown table in ``benchmarks/results/scale.md`` with a log-log fit of
  cost against spots.

    python benchmarks/scale.py all                    # everything (~1 h on 2 busy cores)
    python benchmarks/scale.py train --spots 100000   # one case
    python benchmarks/scale.py report
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
RAW = ROOT / "benchmarks" / "results" / "scale_raw"
RESULT = ROOT / "benchmarks" / "results" / "scale.md"
N_GENES = 50
DIMS = {"sthisto_deep": 128, "sthisto_morphology": 17, "sthisto_topology": 5}
TRAIN_BATCH = 4096
TRAIN_EPOCHS = 2
MODEL_SPOTS = 20_000
DEMO_BATCH = 64
DEMO_SETTINGS = {"epochs": 100, "n_ensemble": 1, "eval_every": 5}
os.environ.setdefault("STHISTO_PROGRESS", "0")


# ----------------------------------------------------------------- measuring
class PeakRSS:
    """Sample this process's resident set size every ``every`` seconds (a thread)."""

    def __init__(self, every: float = 0.02) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> int:
        """Current RSS in bytes."""
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(self.every)

    def __enter__(self) -> PeakRSS:
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def _mb(n_bytes: float) -> float:
    return round(n_bytes / 2**20, 1)


# ------------------------------------------------------------------ sections
def hex_section(n_spots: int, *, seed: int = 0, counts: bool = True):
    """A synthetic section of ``n_spots`` on a hexagonal lattice (100 px pitch) with model inputs.

    Features are noisy functions of three smooth latent fields; counts are Poisson with a
    log-rate linear in the latents (so there is something to learn). The spot graph is
    ``sthisto.pp.spatial_graph`` (6-NN).
    """
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    import sthisto as st

    rng = np.random.default_rng(seed)
    cols = int(np.ceil(np.sqrt(n_spots * 2 / np.sqrt(3))))
    r, c = np.divmod(np.arange(n_spots), cols)
    xy = np.column_stack([c * 100.0 + (r % 2) * 50.0, r * 100.0 * np.sqrt(3) / 2])
    span = xy.max(0) + 1
    u, v = xy[:, 0] / span[0], xy[:, 1] / span[1]
    scale = max(1.0, np.sqrt(n_spots / 20_000))  # the same pattern density at every size
    z = np.column_stack([np.sin(2 * np.pi * 3 * scale * u) * np.cos(2 * np.pi * 2 * scale * v),
                         np.cos(2 * np.pi * 4 * scale * (u + v)), np.sin(2 * np.pi * 5 * scale * v)])
    z = z.astype(np.float32)
    mix = np.random.default_rng(123)
    obsm = {}
    for key, d in DIMS.items():
        w = mix.normal(size=(3, d)).astype(np.float32)
        x = np.tanh(z @ w)
        x += 0.3 * rng.standard_normal(size=x.shape, dtype=np.float32)
        obsm[key] = x
    if counts:
        b = np.random.default_rng(7).normal(0, 0.7, size=(3, N_GENES)).astype(np.float32)
        rows = []
        for s in range(0, n_spots, 100_000):  # chunks keep the dense rates small
            lam = np.exp(1.0 + z[s:s + 100_000] @ b)
            rows.append(sp.csr_matrix(rng.poisson(lam).astype(np.float32)))
        x_counts = sp.vstack(rows).tocsr()
    else:
        x_counts = sp.csr_matrix((n_spots, N_GENES), dtype=np.float32)
    obs = pd.DataFrame(index=pd.Index([f"s{i}" for i in range(n_spots)]))
    var = pd.DataFrame(index=pd.Index([f"g{j}" for j in range(N_GENES)]))
    adata = ad.AnnData(X=x_counts, obs=obs, var=var, obsm={"spatial": xy, **obsm})
    st.pp.spatial_graph(adata, n_neighs=6)
    return adata


FIT_KW = {"epoch_selection": "fixed", "n_ensemble": 1, "loss_weights": {"ranking": 1.0, "recon": 1.0},
          "use_go": False, "progress": False, "seed": 0}


# -------------------------------------------------------------------- cases
def case_train(n_spots: int, batch_size: int | None) -> dict:
    import sthisto as st

    t = time.perf_counter()
    adata = hex_section(n_spots)
    build_s = time.perf_counter() - t
    rss0 = PeakRSS.now()
    with PeakRSS() as peak:
        t = time.perf_counter()
        model = st.tl.fit(adata, genes=list(adata.var_names), epochs=TRAIN_EPOCHS, batch_size=batch_size, **FIT_KW)
        fit_s = time.perf_counter() - t
    epoch_s = [float(x) for x in model.history["time_s"]]
    return {"part": "train", "spots": n_spots, "batch_size": batch_size, "epochs": TRAIN_EPOCHS,
            "build_s": build_s, "fit_s": fit_s, "epoch_s": epoch_s, "s_per_epoch": float(np.median(epoch_s)),
            "rss_before_mb": _mb(rss0), "peak_rss_mb": _mb(peak.peak),
            "maxrss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
            "n_blocks": -(-n_spots // batch_size) if batch_size else 1, "load": os.getloadavg()[0]}


def case_model(path: str) -> dict:
    import sthisto as st

    adata = hex_section(MODEL_SPOTS, seed=1)
    model = st.tl.fit(adata, genes=list(adata.var_names), epochs=3, batch_size=TRAIN_BATCH, **FIT_KW)
    model.save(path, overwrite=True)
    return {"part": "model", "spots": MODEL_SPOTS, "path": path}


def case_predict(n_spots: int, model_path: str, batch_size: int | None) -> dict:
    import sthisto as st

    model = st.tl.M2TGLGO.load(model_path)
    t = time.perf_counter()
    adata = hex_section(n_spots, seed=2, counts=False)
    build_s = time.perf_counter() - t
    rss0 = PeakRSS.now()
    with PeakRSS() as peak:
        t = time.perf_counter()
        st.tl.predict(adata, model, batch_size=batch_size)
        predict_s = time.perf_counter() - t
    pred = adata.layers["sthisto_pred"]
    return {"part": "predict", "spots": n_spots, "batch_size": batch_size, "build_s": build_s,
            "predict_s": predict_s, "rss_before_mb": _mb(rss0), "peak_rss_mb": _mb(peak.peak),
            "maxrss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
            "finite": bool(np.isfinite(pred).all()), "dtype": str(pred.dtype), "load": os.getloadavg()[0]}


def _demo_sections(cache: Path):
    import anndata as ad

    if not (cache / "genes.h5ad").exists():
        import sthisto as st
        from sthisto.cli._demo import _prepare_sections

        cache.mkdir(parents=True, exist_ok=True)
        adatas, genes = _prepare_sections(st.datasets.her2st_demo(), timings={})
        for a in adatas:
            a.uns.pop("sthisto_nuclei", None)  # the nuclei table is not needed for fitting
            a.write_h5ad(cache / f"{a.obs['section'].iloc[0]}.h5ad")
        genes.write_h5ad(cache / "genes.h5ad")
    adatas = [ad.read_h5ad(cache / f"{s}.h5ad") for s in ("C2", "C3", "C4")]
    return adatas, ad.read_h5ad(cache / "genes.h5ad")


def case_demo(batch_size: int | None, seed: int, cache: str) -> dict:
    import sthisto as st
    from sthisto.cli._demo import MODALITIES

    adatas, genes = _demo_sections(Path(cache))
    t = time.perf_counter()
    df = st.tl.cross_validate(adatas, method="m2tglgo", protocol="paper", n_top=50, modalities=MODALITIES,
                              n_candidates=None,
                              fit_kwargs={"m2tglgo": {**DEMO_SETTINGS, "batch_size": batch_size,
                                                      "gene_prior": genes, "progress": False}},
                              seed=seed)
    cv_s = time.perf_counter() - t
    cols = [c for c in ("fold", "test", "gene_set", "pcc", "mean_pcc") if c in df.columns]
    return {"part": "demo", "batch_size": batch_size, "seed": seed, "cv_s": cv_s,
            "table": df.to_dict(orient="records"), "columns": cols, "load": os.getloadavg()[0]}


CASES = {"train": case_train, "model": case_model, "predict": case_predict, "demo": case_demo}


def run_case(name: str, out: Path, **kw) -> dict:
    """Run one case in a fresh interpreter and return (and store) its JSON record."""
    out.parent.mkdir(parents=True, exist_ok=True)
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import scale; "
            f"r = scale.CASES[{name!r}](**json.loads({json.dumps(kw)!r})); "
            f"open({str(out)!r}, 'w').write(json.dumps(r, indent=1, default=str))")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    if proc.returncode:
        raise RuntimeError(f"case {name} {kw} failed with exit code {proc.returncode}")
    rec = json.loads(out.read_text())
    rec["process_wall_s"] = time.perf_counter() - t
    out.write_text(json.dumps(rec, indent=1, default=str))
    print(f"[scale] {name} {kw}: done in {rec['process_wall_s']:.0f} s", flush=True)
    return rec


# ------------------------------------------------------------------- report
def _slope(records: list[dict], key: str) -> tuple[float, float] | None:
    """Log-log slope of ``key`` against spots, and the cost per 100k spots of a line through 0."""
    pts = [(r["spots"], r[key]) for r in records if r.get(key)]
    if len(pts) < 2:
        return None
    n, y = np.array(pts, dtype=float).T
    exponent = float(np.polyfit(np.log(n), np.log(y), 1)[0])
    per_100k = float((n @ y) / (n @ n) * 1e5)
    return exponent, per_100k


def _demo_rows(raw: Path) -> list[str]:
    import pandas as pd

    rows = []
    for f in sorted(raw.glob("demo_*.json")):
        r = json.loads(f.read_text())
        df = pd.DataFrame(r["table"])
        metric = "pcc" if "pcc" in df.columns else "mean_pcc"
        if "metric" in df.columns:
            df = df[df["metric"] == "pcc"]
            metric = "value"
        sets = df.groupby("gene_set")[metric].mean() if "gene_set" in df.columns else df[metric]
        per = ", ".join(f"{k} {v:.3f}" for k, v in sets.items()) if hasattr(sets, "items") else f"{sets:.3f}"
        mode = "full batch" if r["batch_size"] is None else f"batch_size={r['batch_size']}"
        rows.append(f"| {mode} | {r['seed']} | {per} | {r['cv_s']:.0f} | {r['load']:.1f} |")
    return rows


def report(raw: Path = RAW, out: Path = RESULT) -> str:
    recs = [json.loads(f.read_text()) for f in sorted(raw.glob("*.json"))]
    train = sorted([r for r in recs if r["part"] == "train"], key=lambda r: r["spots"])
    pred = sorted([r for r in recs if r["part"] == "predict"], key=lambda r: r["spots"])
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Scale-out benchmark: mini-batch training and streaming prediction",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs), no GPU; "
        f"`uptime` when this report was written: `{up}`. Each case ran in a fresh process; peak RSS is that "
        "process's resident set, sampled every 20 ms (the whole process: Python, torch, the section's "
        "AnnData and the model). torch uses `sthisto.settings.n_jobs` = 1 thread.",
        "",
        "Reproduce: `python benchmarks/scale.py all` (cases under `flock`-style exclusive runs), then "
        "`python benchmarks/scale.py report`.",
        "",
        "Sections: hexagonal lattice (Visium-like, 100 px pitch), spot graph by `pp.spatial_graph` (6-NN), "
        f"features deep {DIMS['sthisto_deep']}-d + morphology {DIMS['sthisto_morphology']}-d + topology "
        f"{DIMS['sthisto_topology']}-d (noisy functions of smooth latent fields), Poisson counts of {N_GENES} "
        "genes. Model: the default recipe (hidden 128/128, γ 0.6, GAT ×2, inter-modal attention) with the "
        "ranking (SONRM) and reconstruction losses on (weight 1 each), no GO prior, one member, fixed epochs.",
        "",
    ]
    if train:
        lines += ["## Mini-batch training (`tl.fit(..., batch_size=...)`)", "",
                  f"Blocks of at most `batch_size` spots (k-d bisection of the coordinates) with the 2-hop halo "
                  f"of the two GAT layers; one optimiser step per block; {TRAIN_EPOCHS} epochs, s/epoch = median.",
                  "",
                  "| spots | batch_size | blocks | s / epoch | fit wall (s) | RSS before fit (MB) | peak RSS (MB) "
                  "| load avg |", "|---|---|---|---|---|---|---|---|"]
        for r in train:
            lines.append(f"| {r['spots']:,} | {r['batch_size']} | {r['n_blocks']} | {r['s_per_epoch']:.1f} | "
                         f"{r['fit_s']:.1f} | {r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['load']:.1f} |")
        fit = _slope([r for r in train if r["batch_size"]], "s_per_epoch")
        if fit:
            lines += ["", f"Cost growth: log-log slope of s/epoch against spots = **{fit[0]:.2f}** (1 = linear); "
                          f"≈ {fit[1]:.1f} s per epoch per 100k spots."]
        lines.append("")
    if pred:
        lines += ["## Streaming prediction (`tl.predict`)", "",
                  "A model trained on a 20k-spot section predicts the N-spot section: above 50,000 spots "
                  "`tl.predict` streams blocks of 16,384 spots with the halo (layer-wise β over the whole "
                  "section, so the result equals the whole-section forward up to float rounding). `batch_size` "
                  "`None` below 50k spots = whole section at once.",
                  "", "| spots | batch_size | predict (s) | RSS before (MB) | peak RSS (MB) | peak − before (MB) "
                  "| load avg |", "|---|---|---|---|---|---|---|"]
        for r in pred:
            bs = r["batch_size"] if r["batch_size"] is not None else "auto (16,384)"
            lines.append(f"| {r['spots']:,} | {bs} | {r['predict_s']:.1f} | {r['rss_before_mb']:.0f} | "
                         f"{r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] - r['rss_before_mb']:.0f} | {r['load']:.1f} |")
        fit = _slope(pred, "predict_s")
        if fit:
            lines += ["", f"Cost growth: log-log slope of predict time against spots = **{fit[0]:.2f}**; "
                          f"≈ {fit[1]:.1f} s per 100k spots."]
        lines.append("")
    demo = _demo_rows(raw)
    if demo:
        lines += ["## Mini-batch vs full batch on the HER2ST demo", "",
                  "Leave-one-section-out `tl.cross_validate` over C2, C3, C4 (`sthisto demo` features: texture, "
                  f"morphology, topology; GO prior), `paper` protocol, M2TGLGO with {DEMO_SETTINGS} (epochs chosen "
                  f"by inner validation), full batch vs `batch_size={DEMO_BATCH}` (each ~185-spot section in "
                  "about four blocks). Mean held-out per-gene PCC over the three folds, per gene set.", "",
                  "| training | seed | mean PCC | CV wall (s) | load avg |", "|---|---|---|---|---|", *demo, ""]
    text = "\n".join(lines)
    out.write_text(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["all", "train", "predict", "demo", "report"])
    p.add_argument("--spots", type=int, nargs="*", default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--raw", type=Path, default=RAW)
    args = p.parse_args(argv)
    raw = args.raw
    model_path = str(raw / "model")
    if args.part in ("all", "demo"):
        cache = str(raw / "demo_cache")
        for bs, seed in ((None, 0), (None, 1), (DEMO_BATCH, 0), (DEMO_BATCH, 1)):
            run_case("demo", raw / f"demo_{'full' if bs is None else bs}_{seed}.json",
                     batch_size=bs, seed=seed, cache=cache)
    if args.part in ("all", "train"):
        for n in args.spots or [100_000, 300_000]:
            run_case("train", raw / f"train_{n}.json", n_spots=n, batch_size=args.batch_size or TRAIN_BATCH)
    if args.part in ("all", "predict"):
        if not Path(model_path).exists():
            run_case("model", raw / "model.json", path=model_path)
        for n in args.spots or [100_000, 300_000, 1_000_000]:
            run_case("predict", raw / f"predict_{n}.json", n_spots=n, model_path=model_path,
                     batch_size=args.batch_size)
    print(report(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
