"""Benchmark sthisto.pp.gene_ontology_graph (exact GO gene similarity + graph).

Measures, each job in a fresh process (wall time and peak RSS of that process):
- parsing GO 2019-01-29 with pronto, then loading the cached arrays;
- the 785-gene Hist2ST panel: all-pairs similarity + graph, ontology already cached/loaded;
- all annotated human genes of GOA 2019-01-29 (~19.7k): similarity (sparse top-k) + graph;
- the per-pair approach of the public M2TGLGO code (goatools-style Python loops over gene
  pairs and their term pairs, ancestors as precomputed sets) on a small gene subset,
  extrapolated by the number of gene pairs, and the ratio to the sthisto time.

    python benchmarks/bench_go.py [--subset 60] [--out benchmarks/results/go.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
GO_DIR = SHARED / "go"
PANEL = SHARED / "her2st" / "hist2st_panel_785.txt"


def _job_parse(cache_dir: str) -> dict:
    import sthisto as st
    from sthisto.pp._go._obo import read_obo

    st.settings.datasetdir = cache_dir
    t = time.perf_counter()
    read_obo(GO_DIR / "go_2019-01-29.obo.gz")
    first = time.perf_counter() - t
    t = time.perf_counter()
    ont = read_obo(GO_DIR / "go_2019-01-29.obo.gz")
    return {"parse_s": first, "cached_s": time.perf_counter() - t, "n_terms": int(ont.n_terms)}


def _adata(names):
    import anndata as ad
    import scipy.sparse as sp

    a = ad.AnnData(sp.csr_matrix((1, len(names)), dtype="float32"))
    a.var_names = list(names)
    return a


def _job_panel(repeats: int = 5) -> dict:
    import sthisto as st
    from sthisto.pp._go._graph import bundled

    names = [g.strip() for g in PANEL.read_text().split() if g.strip()]
    bundled()  # load the bundled (cached) ontology + annotations once
    times = []
    for _ in range(repeats):
        a = _adata(names)
        t = time.perf_counter()
        st.pp.gene_ontology_graph(a)
        times.append(time.perf_counter() - t)
    info = a.uns["sthisto_go"]
    return {"n_genes": len(names), "best_s": min(times), "median_s": sorted(times)[len(times) // 2],
            "n_edges": info["n_edges"], "n_unannotated": info["n_unannotated"]}


def _job_all() -> dict:
    import sthisto as st
    from sthisto.pp._go._graph import bundled

    t0 = time.perf_counter()
    _, ann = bundled()
    load = time.perf_counter() - t0
    a = _adata(ann.gene_names.tolist())
    t = time.perf_counter()
    st.pp.gene_ontology_graph(a)
    wall = time.perf_counter() - t
    info = a.uns["sthisto_go"]
    return {"n_genes": a.n_vars, "load_s": load, "graph_s": wall, "n_edges": info["n_edges"],
            "n_unannotated": info["n_unannotated"]}


def _job_loop(n_sub: int) -> dict:
    """goatools-style per-pair similarity: Python loops over gene pairs and term pairs."""
    import numpy as np

    import sthisto as st
    from sthisto.pp._go._graph import bundled, incidence_matrix, match_genes

    ont, ann = bundled()
    names = [g.strip() for g in PANEL.read_text().split() if g.strip()]
    gidx, _ = match_genes(names, ann)
    inc, _ = incidence_matrix(gidx, ann, ont)
    keep = [i for i in range(len(names)) if inc[i].nnz > 0][:n_sub]
    # ancestors per term as sets (goatools GOTerm.get_all_parents()), depth per term
    parents = {}
    for c, p in ont.is_a.T.tolist():
        parents.setdefault(c, []).append(p)
    anc_memo: dict[int, set] = {}

    def anc(t):
        if t not in anc_memo:
            s = set()
            for p in parents.get(t, []):
                s.add(p)
                s |= anc(p)
            anc_memo[t] = s
        return anc_memo[t]

    sys.setrecursionlimit(10000)
    depth, dom = ont.depth, ont.domain
    gene_terms = [inc[i].indices.tolist() for i in keep]
    t = time.perf_counter()
    sim = np.zeros((len(keep), len(keep)))
    for i in range(len(keep)):
        for j in range(i, len(keep)):
            tot = 0.0
            for m in gene_terms[i]:
                for k in gene_terms[j]:
                    if dom[m] != dom[k] or depth[m] == 0 or depth[k] == 0:
                        continue
                    tot += len(anc(m) & anc(k)) / max(depth[m], depth[k])
            sim[i, j] = sim[j, i] = tot / (len(gene_terms[i]) * len(gene_terms[j]))
    loop = time.perf_counter() - t
    # check against sthisto on the same genes
    a = _adata([names[i] for i in keep])
    st.pp.gene_ontology_graph(a)
    err = float(np.abs(np.asarray(a.varp["sthisto_go_similarity"]) - sim).max())
    n = len(keep)
    return {"n_genes": n, "loop_s": loop, "pairs": n * (n + 1) // 2, "max_abs_diff": err}


def _run(job: str, *args) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import bench_go as b; "
            f"print('RESULT' + json.dumps(b._job_{job}(*{args!r})))")
    t = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - t
    res = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))[6:])
    rss = next(ln for ln in proc.stderr.splitlines() if "Maximum resident set size" in ln)
    res["peak_rss_mb"] = int(rss.split(":")[1]) / 1024
    res["process_wall_s"] = wall
    return res


def main() -> None:
    """Run every job and write the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=60)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "go.md"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:
        parse = _run("parse", cache)
    panel = _run("panel")
    allg = _run("all")
    loop = _run("loop", args.subset)
    per_pair = loop["loop_s"] / loop["pairs"]
    n785, nall = panel["n_genes"], allg["n_genes"]
    ext785 = per_pair * n785 * (n785 + 1) / 2
    extall = per_pair * nall * (nall + 1) / 2
    cpu = f"{platform.machine()}, {os.cpu_count()} cores visible, Python {platform.python_version()}"
    load = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after the run"
    lines = [
        "# GO gene graph benchmark",
        "",
        f"Machine: {cpu}; shared machine, {load}. GO 2019-01-29 (go-basic) + GOA human",
        "2019-01-29 (bundled snapshot). Each job in a fresh process; peak RSS of that process (`/usr/bin/time -v`).",
        "",
        "| job | genes | time (s) | peak RSS (MB) | notes |",
        "|---|---|---|---|---|",
        f"| parse OBO with pronto (first call) | – | {parse['parse_s']:.2f} | {parse['peak_rss_mb']:.0f} | "
        f"{parse['n_terms']} terms |",
        f"| load parsed ontology from cache | – | {parse['cached_s']:.3f} | – | second call |",
        f"| Hist2ST panel: all pairs + graph | {n785} | {panel['best_s']:.3f} (median {panel['median_s']:.3f}) | "
        f"{panel['peak_rss_mb']:.0f} | {panel['n_edges']} edges, {panel['n_unannotated']} unannotated; ontology loaded |",
        f"| all annotated human genes + graph | {nall} | {allg['graph_s']:.1f} | {allg['peak_rss_mb']:.0f} | "
        f"sparse top-10 similarity, {allg['n_edges']} edges; snapshot load {allg['load_s']:.2f} s |",
        f"| per-pair loops (goatools style) | {loop['n_genes']} | {loop['loop_s']:.2f} | {loop['peak_rss_mb']:.0f} | "
        f"{loop['pairs']} pairs, {1e3 * per_pair:.2f} ms/pair; max |Δ| vs sthisto {loop['max_abs_diff']:.1e} |",
        "",
        "Per-pair approach extrapolated by the number of gene pairs (i ≤ j):",
        "",
        "| genes | per-pair loops, extrapolated (s) | sthisto (s) | ratio |",
        "|---|---|---|---|",
        f"| {n785} | {ext785:.0f} | {panel['best_s']:.3f} | {ext785 / panel['best_s']:.0f}× |",
        f"| {nall} | {extall:.0f} ({extall / 3600:.1f} h) | {allg['graph_s']:.1f} | {extall / allg['graph_s']:.0f}× |",
        "",
        "The extrapolation is optimistic for the loops: genes of the subset are the first annotated",
        "panel genes, and ancestor sets are memoised (as goatools does); it ignores the graph step.",
        "",
        "Reproduce: `python benchmarks/bench_go.py` (reads ../shared/data/go and",
        "../shared/data/her2st/hist2st_panel_785.txt).",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
