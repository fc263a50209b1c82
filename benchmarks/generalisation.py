"""Does M2TGLGO generalise to unseen sections? Held-out PCC against tuned baselines.

Data: the *full-resolution* HER2ST sections C2, C3, C4 (../shared/data/her2st), features
computed on the full images by `benchmarks/her2st_full.py` (nuclei morphology/topology,
weights-free texture, 6-NN spot graph, GO graph, Gene2Vec vectors trained on the other
HER2ST patients). Two protocols, both through `sthisto.tl.cross_validate`:

* ``loso``: leave one section out (train on two, test on the third), 3 folds;
* ``one``: train on one section, test on each of the other two (3 folds, 6 test sections).

Genes: the 50 most variable genes of each fold's training sections (``paper``/``hvg``).
Metric: mean per-gene PCC on each test section, and MSE. Methods: M2TGLGO with the
default recipe (5 seeds) and the paper's preset, ridge / ridge with spatial context / kNN
(each tuned by inner validation on the training sections), the HEST probe and the mean.
An ablation reruns the default with one change at a time on ``loso`` (3 seeds).

Every result row is cached in ``benchmarks/results/generalisation_raw.csv`` (delete rows
to rerun them); the report is ``benchmarks/results/generalisation.md``.

Run:  python benchmarks/generalisation.py [--part main|ablation|report|all] [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from her2st_full import SECTIONS, load

import sthisto as st

HERE = Path(__file__).parent
RAW = HERE / "results" / "generalisation_raw.csv"
OUT = HERE / "results" / "generalisation.md"
MODALITIES = ("texture", "morphology", "topology")
PROTOCOLS = {
    "loso": None,
    "one": [([s], [t for t in SECTIONS if t != s]) for s in SECTIONS],
}
BASELINES = ("ridge", "ridge_context", "knn", "hest_probe", "mean")
#: one change at a time against the default recipe (name → fit settings)
ABLATIONS = {
    "default": {},
    "no dropout": {"dropout": 0.0},
    "no DropEdge": {"edge_dropout": 0.0},
    "no feature clipping": {"feature_clip": None},
    "no target standardisation / gene offset": {"standardize_targets": False, "gene_bias": False},
    "fixed 150 epochs (no inner selection)": {"epoch_selection": "fixed", "epochs": 150},
    "1 member (no ensemble)": {"n_ensemble": 1},
    "paper widths 256/512": {"hidden_dims": (256, 512)},
    "no GO prior (learned P)": {"use_go": False},
    "no within-modal GAT (no graph)": {"use_within": False},
    "no inter-modal attention": {"use_inter": False},
    "+ SONRM, paper form (weight 1)": {"loss_weights": {"ranking": 1.0}},
    "+ SONRM, centred form (weight 1)": {"loss_weights": {"ranking": 1.0}, "ranking_form": "centred"},
    "+ reconstruction, paper form (weight 1)": {"loss_weights": {"recon": 1.0}},
    "+ reconstruction, balanced form (weight 1)": {"loss_weights": {"recon": 1.0}, "recon_form": "balanced"},
    "paper preset": {"preset": "paper"},
}
COLUMNS = ["part", "variant", "protocol", "gene_set", "method", "seed", "fold", "test_section", "pcc", "mse",
           "fit_s", "choice", "load"]


def _cached() -> pd.DataFrame:
    return pd.read_csv(RAW) if RAW.exists() else pd.DataFrame(columns=COLUMNS)


def _append(rows: list[dict]) -> None:
    df = pd.concat([_cached(), pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True)
    RAW.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(RAW, index=False)


def _done(part, variant, protocol, method, seed) -> bool:
    df = _cached()
    return bool(((df.part == part) & (df.variant == variant) & (df.protocol == protocol)
                 & (df.method == method) & (df.seed == seed)).any())


def run(adatas, *, part, variant, protocol, methods, seed, fit_kwargs=None, gene_sets=("hvg", "heg")) -> None:
    todo = [m for m in methods if not _done(part, variant, protocol, m, seed)]
    if not todo:
        return
    t0 = time.perf_counter()
    df = st.tl.cross_validate(adatas, method=todo, protocol="paper", n_top=50, gene_sets=gene_sets,
                              modalities=MODALITIES, folds=PROTOCOLS[protocol], section_names=list(SECTIONS),
                              seed=seed, fit_kwargs={k: v for k, v in (fit_kwargs or {}).items() if k in todo})
    load = os.getloadavg()[1]  # 5-minute load average as the run ends: how shared the CPU was
    timing = pd.DataFrame(df.attrs["timings"]).set_index(["fold", "method", "gene_set"])
    df = df[df.metric.isin(["pcc", "mse"])]
    wide = df.pivot_table(index=["fold", "test_section", "method", "gene_set"], columns="metric",
                          values="value").reset_index()
    rows = [{"part": part, "variant": variant, "protocol": protocol, "gene_set": r.gene_set, "method": r.method,
             "seed": seed, "fold": r.fold, "test_section": r.test_section, "pcc": r.pcc, "mse": r.mse,
             "fit_s": timing.loc[(r.fold, r.method, r.gene_set), "fit_s"],
             "choice": timing.loc[(r.fold, r.method, r.gene_set), "choice"], "load": load}
            for r in wide.itertuples()]
    _append(rows)
    print(f"{part}/{variant}/{protocol}/seed {seed}: {todo} in {time.perf_counter() - t0:.0f} s", flush=True)


def main_part(adatas, seeds) -> None:
    for protocol in PROTOCOLS:
        run(adatas, part="main", variant="default", protocol=protocol, methods=BASELINES, seed=0)
        for seed in seeds:
            run(adatas, part="main", variant="default", protocol=protocol, methods=["m2tglgo"], seed=seed)
        run(adatas, part="main", variant="paper preset", protocol=protocol, methods=["m2tglgo"], seed=0,
            fit_kwargs={"m2tglgo": {"preset": "paper"}})


def ablation_part(adatas, seeds, variants=None) -> None:
    for name, settings in ABLATIONS.items():
        if variants is not None and name not in variants:
            continue
        for seed in seeds:
            if _done("main", name, "loso", "m2tglgo", seed):  # the main part ran this variant already
                continue
            run(adatas, part="ablation", variant=name, protocol="loso", methods=["m2tglgo"], seed=seed,
                fit_kwargs={"m2tglgo": settings}, gene_sets=("hvg",))


# --------------------------------------------------------------------------- report
def _fmt(x: float) -> str:
    return "—" if pd.isna(x) else f"{x:.3f}"


def _method_label(method: str, variant: str) -> str:
    if method == "m2tglgo":
        return "M2TGLGO, default" if variant == "default" else "M2TGLGO, paper preset"
    return {"ridge": "ridge (alpha by inner CV)", "ridge_context": "ridge + neighbourhood mean (alpha by inner CV)",
            "knn": "kNN (k by inner CV)", "hest_probe": "HEST probe (untuned)", "mean": "training mean"}[method]


def _main_table(main: pd.DataFrame, protocol: str, gene_set: str = "hvg") -> list[str]:
    d = main[(main.protocol == protocol) & (main.gene_set == gene_set)]
    tests = list(dict.fromkeys(d.sort_values(["fold", "test_section"])[["fold", "test_section"]]
                               .apply(lambda r: f"{r.fold}: {r.test_section}", axis=1)))
    d = d.assign(test=d.fold + ": " + d.test_section)
    lines = ["| method | mean PCC | seeds | seed sd | max seed sd of a test section | " + " | ".join(tests)
             + " | MSE | fit s |",
             "|---|---|---|---|---|" + "---|" * len(tests) + "---|---|"]
    order = [("m2tglgo", "default"), ("m2tglgo", "paper preset")] + [(b, "default") for b in BASELINES]
    for method, variant in order:
        g = d[(d.method == method) & (d.variant == variant)]
        if g.empty:
            continue
        per_seed = g.groupby("seed")["pcc"].mean()
        per_test = g.groupby("test")["pcc"].mean()
        sd = per_seed.std(ddof=1) if len(per_seed) > 1 else np.nan
        test_sd = g.groupby("test")["pcc"].std(ddof=1).max() if len(per_seed) > 1 else np.nan
        cells = [_fmt(per_test.get(t, np.nan)) for t in tests]
        lines.append(f"| {_method_label(method, variant)} | {_fmt(g.pcc.mean() if method != 'mean' else np.nan)} | "
                     f"{len(per_seed)} | {_fmt(sd)} | {_fmt(test_sd)} | " + " | ".join(cells)
                     + f" | {_fmt(g.mse.mean())} | {g.fit_s.mean():.1f} |")
    return lines


def _load_range(df: pd.DataFrame) -> str:
    load = pd.to_numeric(df.get("load", pd.Series(dtype=float)), errors="coerce").dropna()
    if load.empty:
        return "the load average was not recorded"
    missing = len(df) - len(load)
    return (f"5-minute load average {load.min():.1f}-{load.max():.1f} at the end of the runs"
            + (f", not recorded for {missing} of {len(df)} rows" if missing else ""))


def report() -> None:
    df = _cached()
    df["pcc"] = df["pcc"].astype(float)
    main = df[df.part == "main"]
    lines = [
        "# Generalisation to unseen sections (full-resolution HER2ST C2, C3, C4)",
        "",
        "`python benchmarks/generalisation.py` — features from the full images "
        "(`benchmarks/her2st_full.py`: nuclei morphology + topology, weights-free texture; 6-NN graph; "
        "GO graph; Gene2Vec vectors trained on the *other* HER2ST patients). Genes: the 50 most variable "
        "genes of each fold's training sections. Cells: mean per-gene PCC on the test section (mean over "
        "seeds for M2TGLGO; the baselines are deterministic given the fold, one run each); `seed sd`: sd over seeds of the mean over test sections; MSE of the log-normalised "
        "expression of those genes; `fit s`: one fit (2-core CPU, 1 training thread, shared machine: "
        f"{_load_range(df)}). "
        "Every tuned knob (M2TGLGO's epochs, ridge alpha, kNN k) is chosen by inner validation on the "
        "training sections of the fold only.",
        "",
        f"Python {platform.python_version()}, {platform.machine()}, CPU; load average when the report was "
        f"written: {os.getloadavg()[0]:.1f}.",
        "",
        "<!-- tables: docs/model.md includes what follows -->",
        "",
        "## Leave one section out (train on two, test on the third), top-50 HVG",
        "",
        *_main_table(main, "loso"),
        "",
        "## Train on one section, test on the other two, top-50 HVG",
        "",
        *_main_table(main, "one"),
        "",
        "## The same for the top-50 highly expressed genes (HEG)",
        "",
        "Leave one section out:",
        "",
        *_main_table(main, "loso", "heg"),
        "",
        "Train on one, test on two:",
        "",
        *_main_table(main, "one", "heg"),
        "",
    ]
    ab = pd.concat([df[df.part == "ablation"],
                    main[main.variant.isin(list(ABLATIONS)) & (main.method == "m2tglgo")
                         & (main.protocol == "loso") & (main.gene_set == "hvg")].assign(part="ablation")])
    if not ab.empty:
        ref = ab[ab.variant == "default"].groupby("fold")["pcc"].mean()
        lines += ["## Ablation (leave one section out, top-50 HVG; one change at a time against the default)", "",
                  "| variant | mean PCC | Δ vs default | per fold (C2 / C3 / C4) | seeds | MSE | fit s |",
                  "|---|---|---|---|---|---|---|"]
        for name in ABLATIONS:
            g = ab[ab.variant == name]
            if g.empty:
                continue
            per_fold = g.groupby("fold")["pcc"].mean()
            lines.append(f"| {name} | {_fmt(g.pcc.mean())} | {g.pcc.mean() - ref.mean():+.3f} | "
                         + " / ".join(_fmt(per_fold.get(s, np.nan)) for s in SECTIONS)
                         + f" | {g.seed.nunique()} | {_fmt(g.mse.mean())} | {g.fit_s.mean():.1f} |")
        lines.append("")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["main", "ablation", "report", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ablation-seeds", type=int, default=3)
    parser.add_argument("--variants", nargs="*", choices=list(ABLATIONS), default=None,
                        help="ablation variants to run (default: all)")
    args = parser.parse_args()
    st.settings.progress_bar = False
    if args.part != "report":
        adatas = load()
        if args.part in ("main", "all"):
            main_part(adatas, range(args.seeds))
        if args.part in ("ablation", "all"):
            ablation_part(adatas, range(args.ablation_seeds), args.variants)
    report()
